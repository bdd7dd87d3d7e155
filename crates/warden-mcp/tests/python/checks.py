"""What both SDK scripts share: named checks, a tally, and a result's text."""

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: object = "") -> None:
    """Record one check and print it; a failure shows (at most 2000 characters of) why."""
    shown = str(detail)[:2000]
    results.append((name, ok, shown))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {shown}"), flush=True)


def failed() -> int:
    return sum(1 for _, ok, _ in results if not ok)


def tally() -> int:
    """Print `N passed, N failed`; the exit code for it."""
    bad = failed()
    print(f"{len(results) - bad} passed, {bad} failed")
    return 1 if bad else 0


def text(result) -> str:
    """All the text content of a tool result, joined."""
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
