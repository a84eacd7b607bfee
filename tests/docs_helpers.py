"""Reading the docs as a test does: a section of a Markdown file, its shell blocks, the settings an `az` command sets."""

from __future__ import annotations

import re
import shlex
import subprocess

FENCE = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.M | re.S)


def section(text: str, heading: str) -> str:
    """From `heading` to the next heading of the same or a higher level (a `#` comment in a code block is none)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(heading + "\n")
    level = len(heading) - len(heading.lstrip("#"))
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start:end])
    return "".join(lines[start:])


def shell_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and here-documents' bodies left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    found, heredoc = [], None
    for line in joined.splitlines():
        if heredoc:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if marker := re.search(r"<<-?'?(\w+)'?", line):
            heredoc = marker[1]
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(line)
    return found


def settings_set_by(blocks: list[str]) -> set[str]:
    """The names every `az functionapp config appsettings set ... --settings N=V ...` of the blocks sets."""
    names: set[str] = set()
    for block in blocks:
        for command in commands(block):
            words = shlex.split(command, comments=True)
            if words[:5] != ["az", "functionapp", "config", "appsettings", "set"]:
                continue
            flag = "--settings" if "--settings" in words else "--slot-settings"
            for word in words[words.index(flag) + 1 :]:
                if word.startswith("-"):
                    break
                names.add(word.split("=", 1)[0])
    return names


def bash_syntax_error(block: str) -> str | None:
    """bash's own parse of a block (`bash -n`): None when it is valid shell, else bash's message."""
    done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True, check=False)
    return done.stderr.strip() or None if done.returncode else None
