"""A small gettext .po/.pot reader, enough to check the addon's translation files.

`polib` (which Odoo itself uses to load them) is not a test dependency; this reader is
strict instead of forgiving, so a file it accepts is one polib and Odoo read the same way.
"""

import re
from pathlib import Path
from typing import Dict, List, Optional

ESCAPES = {'n': '\n', 't': '\t', 'r': '\r', '"': '"', '\\': '\\'}
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"$')


class PoError(ValueError):
    """A line the reader does not understand, with its file and line number."""


class Entry:
    """One message: its msgid, msgstr, and the comments Odoo relies on to import it.

    Odoo 14 finds the record a term belongs to from the references (`#: model:...`), the
    module from the `#. module:` comment and the web client's terms from `#. openerp-web`.
    """

    def __init__(self) -> None:
        self.msgid: Optional[str] = None
        self.msgstr: Optional[str] = None
        self.msgctxt: Optional[str] = None
        self.references: List[str] = []
        self.extracted: List[str] = []  # `#.` lines
        self.flags: List[str] = []  # `#,` lines
        self.line = 0


class PoFile:
    def __init__(self, header: Dict[str, str], header_comments: List[str], entries: List[Entry]) -> None:
        self.header = header
        self.header_comments = header_comments
        self.entries = entries

    def by_msgid(self) -> Dict[str, Entry]:
        return {entry.msgid: entry for entry in self.entries}


def unquote(text: str, where: str) -> str:
    match = QUOTED.match(text.strip())
    if not match:
        raise PoError(f"{where}: expected a quoted string, got {text!r}")
    out = []
    body = iter(match.group(1))
    for char in body:
        if char == '\\':
            escaped = next(body)
            if escaped not in ESCAPES:
                raise PoError(f"{where}: unknown escape \\{escaped}")
            out.append(ESCAPES[escaped])
        else:
            out.append(char)
    return ''.join(out)


def parse(path: Path) -> PoFile:
    """Read `path` (UTF-8); raises PoError on anything malformed or duplicated."""
    entries: List[Entry] = []
    header_comments: List[str] = []
    entry = Entry()
    keyword = None  # the keyword a continuation line ("...") appends to
    lines = path.read_text(encoding='utf-8').splitlines()

    def finish(current: Entry) -> Entry:
        if current.msgid is not None:
            if current.msgstr is None:
                raise PoError(f"{path}:{current.line}: msgid without msgstr")
            entries.append(current)
        elif current.references or current.flags or current.extracted:
            raise PoError(f"{path}:{current.line}: comments without a message")
        return Entry()

    for number, raw in enumerate(lines, 1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line:
            entry = finish(entry)
            keyword = None
            continue
        if line.startswith('#'):
            if entry.msgstr is not None:
                entry = finish(entry)
                keyword = None
            if line.startswith('#:'):
                entry.references.extend(line[2:].split())
            elif line.startswith('#.'):
                entry.extracted.append(line[2:].strip())
            elif line.startswith('#,'):
                entry.flags.extend(flag.strip() for flag in line[2:].split(',') if flag.strip())
            elif line.startswith('#~'):
                raise PoError(f"{where}: obsolete entry")
            elif not entries and entry.msgid is None:
                header_comments.append(line[1:].strip())
            continue
        if line.startswith('"'):
            if keyword is None:
                raise PoError(f"{where}: continuation line outside a message")
            setattr(entry, keyword, getattr(entry, keyword) + unquote(line, where))
            continue
        word, _space, rest = line.partition(' ')
        if word not in ('msgctxt', 'msgid', 'msgstr'):
            raise PoError(f"{where}: unknown keyword {word!r}")
        if word in ('msgid', 'msgctxt') and entry.msgstr is not None:
            entry = finish(entry)
        if getattr(entry, word) is not None:
            raise PoError(f"{where}: second {word} in one entry")
        if word == 'msgstr' and entry.msgid is None:
            raise PoError(f"{where}: msgstr without msgid")
        entry.line = entry.line or number
        setattr(entry, word, unquote(rest, where))
        keyword = word
    finish(entry)

    if not entries or entries[0].msgid != '':
        raise PoError(f"{path}: no header entry (msgid \"\")")
    header_entry = entries.pop(0)
    header = {}
    for field in header_entry.msgstr.splitlines():
        name, colon, value = field.partition(':')
        if not colon:
            raise PoError(f"{path}: malformed header line {field!r}")
        header[name.strip()] = value.strip()
    seen = set()
    for item in entries:
        if item.msgid == '':
            raise PoError(f"{path}:{item.line}: second header entry")
        key = (item.msgctxt, item.msgid)
        if key in seen:
            raise PoError(f"{path}:{item.line}: duplicate msgid {item.msgid!r}")
        seen.add(key)
    return PoFile(header, header_comments, entries)


# -- Plural-Forms: a C expression of n, evaluated the way gettext does ---------------

PLURAL_FORMS = re.compile(r'^nplurals=(\d+);\s*plural=(.+?);?$')
TOKEN = re.compile(r'\s*(?:(\d+)|(n)|(\|\||&&|==|!=|<=|>=|[-+*/%<>!?:()]))')
BINARY = [('||',), ('&&',), ('==', '!='), ('<', '>', '<=', '>='), ('+', '-'), ('*', '/', '%')]


def plural_function(header_value: str):
    """(nplurals, f) from a Plural-Forms header value; raises PoError if it is not gettext's syntax."""
    match = PLURAL_FORMS.match(header_value.strip())
    if not match:
        raise PoError(f"malformed Plural-Forms {header_value!r}")
    nplurals, expression = int(match.group(1)), match.group(2)
    tokens = []
    position = 0
    expression = expression.strip()
    while position < len(expression):
        token = TOKEN.match(expression, position)
        if not token:
            raise PoError(f"bad plural expression {expression!r} at {position}")
        tokens.append(token.group(1) or token.group(2) or token.group(3))
        position = token.end()
    tree, rest = _ternary(tokens)
    if rest:
        raise PoError(f"trailing tokens in plural expression {expression!r}: {rest}")
    return nplurals, lambda n: _evaluate(tree, n)


def _ternary(tokens):
    condition, rest = _binary(tokens, 0)
    if rest and rest[0] == '?':
        yes, rest = _ternary(rest[1:])
        if not rest or rest[0] != ':':
            raise PoError("'?' without ':' in plural expression")
        no, rest = _ternary(rest[1:])
        return ('?', condition, yes, no), rest
    return condition, rest


def _binary(tokens, level):
    if level == len(BINARY):
        return _unary(tokens)
    left, rest = _binary(tokens, level + 1)
    while rest and rest[0] in BINARY[level]:
        operator = rest[0]
        right, rest = _binary(rest[1:], level + 1)
        left = (operator, left, right)
    return left, rest


def _unary(tokens):
    if not tokens:
        raise PoError("plural expression ends too early")
    head, rest = tokens[0], tokens[1:]
    if head == '!':
        operand, rest = _unary(rest)
        return ('!', operand), rest
    if head == '(':
        inner, rest = _ternary(rest)
        if not rest or rest[0] != ')':
            raise PoError("unbalanced parenthesis in plural expression")
        return inner, rest[1:]
    if head == 'n':
        return 'n', rest
    if head.isdigit():
        return int(head), rest
    raise PoError(f"unexpected {head!r} in plural expression")


OPERATORS = {
    '||': lambda a, b: int(bool(a) or bool(b)), '&&': lambda a, b: int(bool(a) and bool(b)),
    '==': lambda a, b: int(a == b), '!=': lambda a, b: int(a != b),
    '<': lambda a, b: int(a < b), '>': lambda a, b: int(a > b),
    '<=': lambda a, b: int(a <= b), '>=': lambda a, b: int(a >= b),
    '+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
    '/': lambda a, b: a // b, '%': lambda a, b: a % b,
}


def _evaluate(tree, n):
    if tree == 'n':
        return n
    if isinstance(tree, int):
        return tree
    if tree[0] == '?':
        return _evaluate(tree[2] if _evaluate(tree[1], n) else tree[3], n)
    if tree[0] == '!':
        return int(not _evaluate(tree[1], n))
    return OPERATORS[tree[0]](_evaluate(tree[1], n), _evaluate(tree[2], n))
