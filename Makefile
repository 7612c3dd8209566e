# make run: a working admin with demo data on the embedded defaults (SQLite, eager tasks).
# make test: the whole suite (SQLite by default; DATABASE_URL=postgres://... for PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint migrate demo worker beat clean screenshots

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

migrate: setup
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

run: demo
	@echo ""
	@echo "  Admin: http://127.0.0.1:8000/admin/   user: admin   password: admin"
	@echo ""
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# two workers (pytest-xdist) on the two-core machine; TEST_WORKERS=0 runs in one process (CI on PostgreSQL)
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# the pictures of docs/img, taken anew from the demo in a throw-away database (needs Debian's chromium)
screenshots: setup
	$(BIN)/python manage.py screenshots

lint: setup
	$(BIN)/ruff check .

worker: setup
	$(BIN)/celery -A billing worker --loglevel=info

beat: setup
	$(BIN)/celery -A billing beat --loglevel=info

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles
