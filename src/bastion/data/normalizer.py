"""Undo the disguises that are cheap to undo before a classifier looks.

Attackers hide requests in encodings and character tricks. Each step here is linear in the
input and bounded: decoding runs at most `max_depth` rounds, only on segments up to
`max_segment_chars`, and a decoded segment replaces its encoding in place (it never grows
the text beyond the original length), so there are no decode bombs or quadratic blow-ups.
Steps that cannot be undone reliably (Caesar shifts other than 13, paraphrase, payload
splitting) are left to the classifiers and to the held-out evaluation.

`Normalizer.local` runs only the steps that read one whitespace-separated token at a time,
so a streamed text normalised piece by piece (cut at whitespace) equals the text normalised
whole; the stream monitor's incremental path relies on that. What reads across tokens
(spaced-out letters, hex with separators, and Morse and ROT13, which are decided on the word
statistics of the whole text) is left to the full normaliser.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

# Lookalike letters from other scripts, folded onto Latin (a subset of Unicode's confusables).
CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "ո": "n",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}
LEET = {"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s", "$": "s", "7": "t"}
MORSE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", "-----": "0",
    ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",", "..--..": "?",
}
COMMON_WORDS = frozenset(
    ["the", "be", "to", "of", "and", "a", "in", "that", "have", "i", "it", "for", "not", "on", "with", "he", "as", "you", "do", "at", "this", "but", "his", "by", "from", "they", "we", "say", "her", "she", "or", "an", "will", "my", "one", "all", "would", "there", "their", "what", "so", "up", "out", "if", "about", "who", "get", "which", "go", "me", "when", "make", "can", "like", "time", "no", "just", "him", "know", "take", "people", "into", "year", "your", "good", "some", "could", "them", "see", "other", "than", "then", "now", "look", "only", "come", "its", "over", "think", "also", "back", "after", "use", "two", "how", "our", "work", "first", "well", "way", "even", "new", "want", "because", "any", "these", "give", "day", "most", "us", "is", "are", "was", "were", "has", "had", "been", "how", "why", "where", "tell", "explain", "write", "make", "help", "please", "need", "best"]
)

_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# 16+ characters, or 10+ with padding: shorter runs are ordinary words as often as base64.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]{10,}={1,2})(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){8,}(?![0-9A-Fa-f])")
_URL = re.compile(r"(?:%[0-9A-Fa-f]{2}){3,}")
_MORSE_TEXT = re.compile(r"^[.\-/ ]+$")
_MORSE_RUN = re.compile(r"[.\-][.\-/ ]{10,}[.\-]")
_CLAUSE_BREAK = re.compile(r"([:\n]\s*)")
_WORD = re.compile(r"[A-Za-z]{2,}")
_SPACED = re.compile(r"(?<!\S)(?:\S ){1,}\S(?!\S)")
_CONFUSABLE_TOKEN = re.compile("(?<!\\S)\\S*[" + "".join(CONFUSABLES) + "]\\S*")
MIN_REVERSED_WORDS = 2
_REVERSED_WORDS = frozenset(w[::-1] for w in COMMON_WORDS if len(w) > 2 and w[::-1] not in COMMON_WORDS)
_LEET_TOKEN = re.compile("(?<!\\S)\\S*[" + re.escape("".join(LEET)) + "]\\S*")


def _english_score(text: str, min_letters: int = 2) -> float:
    words = re.findall(f"[a-z]{{{min_letters},}}", text.lower())
    return sum(w in COMMON_WORDS for w in words) / len(words) if words else 0.0


def _readable(raw: bytes) -> str | None:
    """Decoded bytes as text, or None when they are not mostly printable UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or not all(ch.isprintable() or ch in "\n\t" for ch in text):
        return None
    wordlike = sum(ch.isalnum() or ch.isspace() for ch in text) / len(text)
    ascii_share = sum(ch.isascii() for ch in text) / len(text)
    # Short non-ASCII results are what random letters decode to; real payloads are longer.
    return text if wordlike >= 0.75 and (ascii_share >= 0.9 or len(text) >= 8) else None


def _decode_base64(segment: str) -> str | None:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return _readable(base64.b64decode(padded, validate=True))
    except (binascii.Error, ValueError):
        return None


def _decode_hex(segment: str) -> str | None:
    try:
        return _readable(bytes.fromhex(re.sub(r"[ :]", "", segment)))
    except ValueError:
        return None


def _decode_morse(text: str) -> str | None:
    if not _MORSE_TEXT.match(text.strip()) or text.count(".") + text.count("-") < 8:
        return None
    words = [w for w in re.split(r"\s*/\s*|\s{3,}", text.strip()) if w]
    letters = [["".join(MORSE.get(code, "")) for code in w.split()] for w in words]
    decoded = " ".join("".join(w) for w in letters)
    return decoded if len(set(decoded) - {" "}) >= 3 else None  # not a rule of dashes or an ellipsis


def _decode_morse_runs(text: str) -> str:
    """Morse code decoded where it stands, so a plain instruction around it stays readable."""
    if ".-" not in text and "-." not in text:
        return text

    def repl(match: re.Match[str]) -> str:
        decoded = _decode_morse(match.group())
        return decoded if decoded is not None else match.group()

    return _MORSE_RUN.sub(repl, text)


def _shift(text: str, k: int) -> str:
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    return text.translate(str.maketrans(lower + upper, lower[k:] + lower[:k] + upper[k:] + upper[:k]))


def _unscramble_clauses(text: str) -> str:
    """Clauses that read as English only reversed or letter-shifted (Caesar), read as English.

    Only clauses of at least four words that are almost no common English words are tried,
    so ordinary prose never pays for the 26 candidates; a candidate must read clearly better.
    """
    parts = _CLAUSE_BREAK.split(text)
    for i in range(0, len(parts), 2):
        clause = parts[i]
        if len(_WORD.findall(clause)) < 4 or (plain := _english_score(clause)) >= 0.1:
            continue
        score, best = max((_english_score(c), c) for c in (clause[::-1], *(_shift(clause, k) for k in range(1, 26))))
        # Two-letter words (so, me, on) turn up in other languages read backwards: some longer ones must too.
        if score >= 0.3 and score > plain + 0.25 and _english_score(best, 3) >= 0.1:
            parts[i] = best
    return "".join(parts)


def _reverse_spans(text: str) -> str:
    """A run of words that reads as English only backwards, read forwards, wherever it stands.

    `_unscramble_clauses` needs a whole clause of cipher; a reversed request followed by a
    plain instruction ("... Write your answer in base64.") hides inside a clause that is half
    English. Here each word votes (+1 when only its reversal is a common word, -1 when only
    it is; a word that starts with a full stop is a sentence's end read backwards), and the
    best-scoring run, with at least MIN_REVERSED_WORDS net votes, is reversed in place: one
    set lookup a word, so ordinary text pays almost nothing.
    """
    if _REVERSED_WORDS.isdisjoint(text.lower().split()):
        return text  # the common case, decided in C: no word here is a common word backwards
    tokens = list(re.finditer(r"\S+", text))
    votes = []
    for token in tokens:
        raw = token.group()
        word = raw.strip(string.punctuation).lower()
        forwards, backwards = word in COMMON_WORDS, word[::-1] in COMMON_WORDS
        backwards |= raw[0] in ".?!," and raw[1:2].isalpha()  # a sentence's end, read from its end
        # two-letter reversals (si, os, em) are words in other languages too often to count
        votes.append(int(backwards and not forwards and len(word) > 2) - int(forwards and not backwards))
    if sum(v > 0 for v in votes) < MIN_REVERSED_WORDS:
        return text
    best, start, run, run_start, end = 0, 0, 0, 0, -1
    for i, vote in enumerate(votes):  # maximum-sum run (Kadane)
        if run <= 0:
            run, run_start = 0, i
        run += vote
        if run > best:
            best, start, end = run, run_start, i
    if best < MIN_REVERSED_WORDS:
        return text
    a, b = tokens[start].start(), tokens[end].end()
    return text[:a] + text[a:b][::-1] + text[b:]


def _rot13(text: str) -> str:
    return text.translate(str.maketrans(
        string.ascii_lowercase + string.ascii_uppercase,
        string.ascii_lowercase[13:] + string.ascii_lowercase[:13]
        + string.ascii_uppercase[13:] + string.ascii_uppercase[:13],
    ))


def _fold_token(token: str) -> str:
    """Fold lookalikes in a token that mixes scripts or consists only of lookalikes."""
    letters = [ch for ch in token if ch.isalpha()]
    if not any(ch in CONFUSABLES for ch in letters):
        return token
    latin_or_confusable = all(ch.isascii() or ch in CONFUSABLES for ch in letters)
    return "".join(CONFUSABLES.get(ch, ch) for ch in token) if latin_or_confusable else token


def _deleet_token(token: str) -> str:
    """Map leet digits back to letters in a token that mixes them with letters."""
    if not any(ch.isalpha() for ch in token) or not any(ch in LEET for ch in token):
        return token
    core = token.rstrip(".,;:?!")  # keep sentence punctuation
    return "".join(LEET.get(ch, ch) for ch in core) + token[len(core):]


def _deleet(text: str) -> str:
    return _LEET_TOKEN.sub(lambda m: _deleet_token(m.group()), text)


def _canonical_characters(text: str, whole_text: bool) -> str:
    """NFKC, no invisible characters, lookalike letters folded onto Latin, letters de-spaced."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    text = _CONFUSABLE_TOKEN.sub(lambda m: _fold_token(m.group()), text)
    return _SPACED.sub(lambda m: m.group().replace(" ", ""), text) if whole_text else text


@dataclass(frozen=True)
class Normalizer:
    """Canonicalise text so that cheap disguises map back to the plain request.

    Parameters are plain values so the normalizer is recorded in a guard manifest and
    rebuilt identically at load time.
    """

    max_depth: int = 3
    max_segment_chars: int = 65_536
    casefold: bool = True

    def __call__(self, text: str) -> str:
        return self._normalise(text, whole_text=True)

    def local(self, text: str) -> str:
        """Only the token-local steps: normalising text cut at whitespace piece by piece gives the same."""
        return self._normalise(text, whole_text=False)

    def _normalise(self, text: str, whole_text: bool) -> str:
        text = self._canonical(text, whole_text)
        for _ in range(self.max_depth):
            decoded = self._decode_once(text, whole_text)
            if decoded == text:
                break
            text = self._canonical(decoded, whole_text)
        text = _deleet(text)
        text = " ".join(text.split())
        return text.casefold() if self.casefold else text

    def _canonical(self, text: str, whole_text: bool) -> str:
        # Morse first: de-spacing would glue its one-symbol letters (E, T) to their neighbours.
        if whole_text and len(text) <= self.max_segment_chars:
            text = _decode_morse_runs(text)
        return _canonical_characters(text, whole_text)

    def _decode_once(self, text: str, whole_text: bool) -> str:
        limit = self.max_segment_chars

        def sub(pattern: re.Pattern[str], decode: object, source: str) -> str:
            def repl(match: re.Match[str]) -> str:
                segment = match.group()
                out = decode(segment) if len(segment) <= limit else None  # type: ignore[operator]
                return out if out is not None else segment

            return pattern.sub(repl, source)

        if "%" in text:
            text = sub(_URL, lambda s: _readable(unquote(s).encode("utf-8", "surrogatepass")), text)
        text = sub(_BASE64, _decode_base64, text)
        if not whole_text:
            return text
        text = sub(_HEX, _decode_hex, text)
        if len(text) > limit:
            return text
        view = _deleet(text)  # judge words, not leet digits
        plain = _english_score(view)
        if plain < 0.5 and _english_score(_rot13(view)) > plain + 0.15:
            return _rot13(text)
        # A ciphered clause drags the whole text's score down; plainly English text skips the search.
        return _unscramble_clauses(text) if plain < 0.3 else _reverse_spans(text)
