"""``hallctl completion bash``: the bash completion script, generated from the parser."""

from __future__ import annotations

import argparse

_FILE_OPTS = {"--config", "--output", "-o", "--sysfs", "--sim-dir"}


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for ``parser`` (commands, sub-actions, options)."""

    def opts(p: argparse.ArgumentParser) -> list[str]:
        return [s for act in p._actions for s in act.option_strings]

    def sub_of(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for act in p._actions:
            if isinstance(act, argparse._SubParsersAction):
                return dict(act.choices)
        return {}

    def words(p: argparse.ArgumentParser) -> list[str]:
        out = list(sub_of(p))
        for act in p._actions:
            if not act.option_strings and act.choices and not isinstance(
                    act, argparse._SubParsersAction):
                out += [str(c) for c in act.choices]
        return out + opts(p)

    top = parser
    value_opts = sorted({s for act in top._actions if act.option_strings and act.nargs != 0
                         for s in act.option_strings})
    lines = ["# bash completion for hallctl (generated: hallctl completion bash)",
             "_hallctl() {",
             '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
             '  local cmd="" sub="" i w',
             "  for ((i = 1; i < COMP_CWORD; i++)); do",
             '    w="${COMP_WORDS[i]}"',
             '    case "$w" in',
             f"      {'|'.join(value_opts)}) ((i++)) ;;",
             "      -*) ;;",
             '      *) if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi ;;',
             "    esac",
             "  done",
             '  case "$prev" in',
             f"    {'|'.join(sorted(_FILE_OPTS))}) COMPREPLY=($(compgen -f -- \"$cur\")); "
             "return ;;",
             "    --port) COMPREPLY=($(compgen -f -- \"${cur:-/dev/}\")); return ;;",
             "  esac",
             '  local words=""',
             '  case "$cmd $sub" in']
    for name, p in sorted(sub_of(top).items()):
        for sname, sp in sorted(sub_of(p).items()):
            lines.append(f'    "{name} {sname}") words="{" ".join(words(sp))}" ;;')
        lines.append(f'    "{name} "*) words="{" ".join(words(p))}" ;;')
    lines += [f'    *) words="{" ".join(words(top))}" ;;',
              "  esac",
              '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
              "}",
              "complete -F _hallctl hallctl",
              ""]
    return "\n".join(lines)
