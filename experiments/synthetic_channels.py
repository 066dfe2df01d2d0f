"""Write a SYNTHETIC acquisition channel per customer for the CDNOW budget demo.

CDNOW records no channels. This assigns them at random (seeded, fixed shares: search 40 %,
social 25 %, email 20 %, affiliate 15 %) with :func:`clvmodel.budget.synthetic_channels`, so that
`clvmodel budget` can be shown on real CLV scores. The channels carry no information.

    python experiments/synthetic_channels.py SCORES_FILE OUTPUT_CSV [--seed 2024]
"""

from __future__ import annotations

import argparse

from clvmodel import io
from clvmodel.budget import synthetic_channels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores")
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    scores = io.read_table(args.scores)
    channels = synthetic_channels(scores["customer_id"], seed=args.seed)
    io.write_table(channels, args.output)
    print(f"SYNTHETIC channels for {len(channels):,} customers written to {args.output}: "
          + ", ".join(f"{k} {v:,}" for k, v in channels["channel"].value_counts().items()))


if __name__ == "__main__":
    main()
