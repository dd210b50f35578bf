"""End to end in headless Chromium against the real stack (see conftest.py for the harness)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SCREENSHOTS, Stack, run_scenario


@pytest.mark.timeout(300)
def test_accounts_projects_members_audit_and_tokens(stack: Stack) -> None:
    """Register, sign out and in, create a project, add a member and change their role, read
    the audit log, create an API token that is shown once (tests/e2e/accounts_projects.mjs)."""
    output = run_scenario(stack, "accounts_projects.mjs")
    assert "scenario passed" in output
    for name in ("register", "projects", "project-members", "project-audit", "profile-token"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5_000, name
