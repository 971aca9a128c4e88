# The two set-up commands of the README. Both install into .venv first (pip only).
PY := .venv/bin/python

.PHONY: smoke test install

install: .venv/installed

.venv/installed: requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -q -r requirements.txt
	$(PY) -m kernels || true  # compile the numba kernels once (on failure the code runs without them)
	touch $@

smoke: install
	SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1 $(PY) pipeline.py --config smoke

test: install
	SDL_VIDEODRIVER=dummy PYGAME_HIDE_SUPPORT_PROMPT=1 $(PY) -m pytest -q
