"""Reading a request that the input spells out in pieces (payload splitting).

An attacker splits a request into fragments — string variables, dictionary values, numbered
pieces, one quoted phrase per turn, the initials of a column of words — and asks the model
to put them together. No fragment reads as the request, and the whole input reads as a
puzzle. This reading puts the pieces back the way such instructions ask: quoted fragments
in the order a concatenation or key list names them (else as they appear), bracket-numbered
fragments by number, a column of single words by initials, and code words by the meanings
the input's own legend gives them. The guard scores what comes out as if it were asked
directly. Ordinary text carries no cue and yields nothing, so traffic pays a few substring
tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MIN_FRAGMENTS = 2
MIN_WORDS = 3  # a reassembly shorter than this is no request
MIN_COLUMN = 8  # lines of one word each before their initials are read
SPACE_MARKS = frozenset("/|_")

# Cheap substring tests decide first; the regexes only confirm. `together` and `order` let
# "put them together" and "in order" through to the regex that reads them whole.
LEGEND_VERBS = ("means", "stands for", "is code for", "is our word for", "refers to", "is short for")
COMBINE_CUES = ("+", "join", "combin", "concaten", "append", "assembl", "merg", "glue", "stitch", "splice", "together", "order")
INITIALS_CUES = ("first letter", "initial", "acrostic", "first character")
_COMBINE_CUE = re.compile(r"\+|\b(?:join|combin|concaten|append|assembl|reassembl|merg|glue|stitch|splice|"
                          r"put (?:them|these|those|it|all|the \w+) (?:back )?together|in (?:numeric |numerical )?order)",
                          re.IGNORECASE)

# 'banana' means 'bomb', "x" stands for "y": a code word, quoted or not, and its quoted meaning.
_LEGEND = re.compile(r"['\"“‘]?\b(\w[\w-]{0,30})\b['\"”’]?\s+(?:" + "|".join(LEGEND_VERBS) + r")\s+['\"“‘]((?:[^'\"”’\n]|'(?=\w)){1,60}?)['\"”’](?!\w)", re.IGNORECASE)
# A quote opens after a non-letter and closes before one; an apostrophe before a letter (don't, it's) is text.
# Fragments are bounded (300 characters), so an unclosed quote costs linear time, not quadratic.
_QUOTED = re.compile(r"(?<![\w'\"])(?:'((?:[^'\n]|'(?=\w)){1,300}?)'|\"([^\"\n]{1,300}?)\"|“([^”\n]{1,300}?)”|"
                     r"‘([^’\n]{1,300}?)’)(?![\w'])")
_ASSIGNED = re.compile(r"\b([A-Za-z_]\w*)['\"]?\s*(?:=|:=|:)\s*$")  # a = '...', part1 := "...", 'k3': '...'
_KEYED = re.compile(r"\s*:")
_CONCATENATION = re.compile(r"\b[A-Za-z_]\w*(?:\s*\+\s*[A-Za-z_]\w*)+")
_KEY_LIST = re.compile(r"\[[^\[\]]*\]")
_NUMBERED = re.compile(r"\[(\d{1,3})\]\s*([^\[\];\n]+)")


def reassemble(user_texts: Sequence[str]) -> list[str]:
    """The requests these user messages (in order) spell out in pieces; [] when there are none.

    Pieces count only where the input also asks for them to be put together (join, combine,
    `+`, first letters, ...): an attack has to say so, and quoted words in ordinary questions
    ("what is the difference between 'x' and 'y'") are not a request.
    """
    text = "\n".join(user_texts)
    lower = text.lower()  # plain substring tests first: most traffic has no cue and pays no regex
    found: list[str | None] = []
    if any(verb in lower for verb in LEGEND_VERBS):
        found.append(_decoded(text))
    if any(cue in lower for cue in COMBINE_CUES) and _COMBINE_CUE.search(text):
        found += [_joined_quotes(text), _by_number(text)]
    if any(cue in lower for cue in INITIALS_CUES):
        found += [_initials(t) for t in user_texts]
    return [r for r in dict.fromkeys(found) if r is not None and len(r.split()) >= MIN_WORDS]


def _decoded(text: str) -> str | None:
    """The input with its own code words ('banana' means 'X') read as what they stand for."""
    legend = {m.group(1).lower(): m.group(2) for m in _LEGEND.finditer(text)}
    if not legend:
        return None
    rest = _LEGEND.sub(" ", text)
    pattern = re.compile(r"\b(" + "|".join(re.escape(code) for code in legend) + r")\b", re.IGNORECASE)
    decoded = pattern.sub(lambda m: legend[m.group(1).lower()], rest)
    return " ".join(decoded.split()) if decoded != rest else None


def _joined_quotes(text: str) -> str | None:
    """Quoted fragments joined: named (a = '...') fragments in the order a concatenation or key
    list names them, the rest as they appear; keys themselves are names, not fragments."""
    named: dict[str, str] = {}
    loose: list[str] = []
    for match in _QUOTED.finditer(text):
        fragment = next(g for g in match.groups() if g is not None).strip()
        if _KEYED.match(text, match.end()):
            continue  # a dictionary key: its value follows
        name = _ASSIGNED.search(text, max(0, match.start() - 40), match.start())
        if name is not None:
            named.setdefault(name.group(1), fragment)
        else:
            loose.append(fragment)
    loose = [f for f in loose if f not in named]  # a list of the keys names the order, it is no fragment
    if len(named) + len(loose) < MIN_FRAGMENTS:
        return None
    order = _named_order(text, named)
    return " ".join([named[n] for n in order] + [v for n, v in named.items() if n not in order] + loose)


def _named_order(text: str, named: dict[str, str]) -> list[str]:
    """The names in the order the text combines them (`a + b + c`, or a list of keys), if it does."""
    for match in (*_CONCATENATION.finditer(text), *_KEY_LIST.finditer(text)):
        names = [n for n in re.findall(r"[A-Za-z_]\w*", match.group()) if n in named]
        if len(names) >= MIN_FRAGMENTS:
            return list(dict.fromkeys(names))
    return []


def _by_number(text: str) -> str | None:
    """Fragments labelled [1], [2], ... in numeric order, when they are given out of order."""
    pieces = [(int(n), piece.strip()) for n, piece in _NUMBERED.findall(text)]
    numbers = [n for n, _ in pieces]
    if len(pieces) < MIN_FRAGMENTS or numbers == sorted(numbers):
        return None  # in order, the input already reads as the request
    return " ".join(piece for _, piece in sorted(pieces))


def _initials(text: str) -> str | None:
    """The initials of the longest run of one-word lines (a space mark such as '/' is a space)."""
    best: list[str] = []
    run: list[str] = []
    for line in [*text.splitlines(), ""]:
        word = line.strip()
        if word and len(word.split()) == 1:
            run.append(word)
            continue
        best, run = max(best, run, key=len), []
    if len(best) < MIN_COLUMN:
        return None
    letters = [" " if w in SPACE_MARKS else w[0] for w in best]
    return " ".join("".join(letters).split())
