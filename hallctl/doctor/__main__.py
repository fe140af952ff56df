"""``python -m hallctl.doctor``: the doctor alone, or ``--markdown`` for the
troubleshooting table (docs/troubleshooting.md)."""

from __future__ import annotations

import argparse
import json
import sys

from hallctl.doctor import as_json, exit_code, make_context, markdown, render, run
from hallctl.doctor.table import EXIT_OK, SERVICE_USER


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hallctl.doctor",
                                description="hall-edge doctor (also `hallctl doctor`)")
    p.add_argument("--config")
    p.add_argument("--user", help=f"judge permissions for this user (default {SERVICE_USER})")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true",
                   help="print the troubleshooting table (docs/troubleshooting.md)")
    a = p.parse_args(argv)
    if a.markdown:
        sys.stdout.write(markdown())
        return EXIT_OK
    ctx = make_context(a.config, user=a.user)
    findings = run(ctx)
    print(json.dumps(as_json(findings, ctx), ensure_ascii=False, indent=2) if a.json
          else render(findings, ctx))
    return exit_code(findings)


if __name__ == "__main__":
    sys.exit(main())
