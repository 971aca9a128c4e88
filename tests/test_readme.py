"""readme.py: the README's tables of runs are the tables of their summary.json files."""
import json

from conftest import REPO, run_script


def test_readme_tables_match_their_summaries():
    proc = run_script("reports/readme.py", "--check")
    assert proc.stdout.strip().endswith("tables match their summary.json")


def test_a_drifted_table_is_named_and_rewritten(tmp_path):
    summary = json.loads((REPO / "docs" / "smoke" / "summary.json").read_text())
    summary["stages"]["evaluate"].update(mean=123.456, std=7.0)
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- summary: summary.json -->\n| an old table |\n<!-- end summary -->\n")
    proc = run_script("reports/readme.py", "--check", "--readme", readme, check=False)
    assert proc.returncode == 2 and "the table of summary.json differs" in proc.stderr
    run_script("reports/readme.py", "--readme", readme)
    text = readme.read_text()
    assert "| evaluate | `model.py norender`, 4 episodes |" in text and "123.46 ± 7.00" in text
    assert run_script("reports/readme.py", "--check", "--readme", readme).returncode == 0


def test_the_readme_is_short_and_every_link_of_it_and_its_pages_resolves():
    """A newcomer reads the README top to bottom; the study, the agent's details, the pipeline's and
    speed's arithmetic live in docs/*.md, which it links. Every relative link and picture exists."""
    import re
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 450
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert {p.name for p in pages} >= {"agent.md", "study.md", "pipeline.md", "speed.md", "smoke.md"}
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name}: {target} does not exist"
