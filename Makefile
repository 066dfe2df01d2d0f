# The two commands of the README. Both create .venv and install clvmodel into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench bench-small

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

install: $(STAMP)

DEMO := demo-output

demo: $(STAMP)
	$(BIN)/clvmodel train configs/cdnow.yaml
	$(BIN)/clvmodel rfm --config configs/cdnow.yaml --output $(DEMO)/cdnow_rfm.csv
	$(BIN)/clvmodel score --model models/cdnow --input $(DEMO)/cdnow_rfm.csv --output $(DEMO)/cdnow_scores.csv
	@echo "--- CLV vs CAC on SYNTHETIC channels and costs (CDNOW has none; see configs/cac_demo.yaml)"
	$(BIN)/python experiments/synthetic_channels.py $(DEMO)/cdnow_scores.csv $(DEMO)/cdnow_channels.csv
	@echo "--- A new customer's value per channel (acquisition value) beside the remaining CLV of existing ones"
	$(BIN)/clvmodel train configs/cdnow_channels.yaml
	$(BIN)/clvmodel acquisition --model models/cdnow_channels --output $(DEMO)/cdnow_acquisition.csv
	$(BIN)/clvmodel budget --scores $(DEMO)/cdnow_scores.csv --customers $(DEMO)/cdnow_channels.csv \
		--cac configs/cac_demo.yaml --model models/cdnow_channels --output $(DEMO)/cdnow_budget.csv

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Speed and memory against the plain lifetimes pipeline (1 M and 10 M rows; --rows 100000000 on
# demand); writes experiments/results/benchmark-<date>.md (-2, -3, ... for later runs that day). bench-small is the CI-sized run.
bench: $(STAMP)
	$(BIN)/python experiments/benchmark.py --out experiments/results

bench-small: $(STAMP)
	$(BIN)/python experiments/benchmark.py --small --out experiments/results

clean:
	rm -rf $(VENV) mlflow.db mlruns .pytest_cache $(DEMO)
