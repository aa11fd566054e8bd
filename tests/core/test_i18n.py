"""Translations: `i18n/bus.pot` holds exactly the addon's translatable strings, as Odoo 14
exports them, and every language the stock addon ships has a complete `.po`.

Our addon shadows the stock one (same name, first in the addons path), which hides the
stock `i18n/` folder: whatever language a user had translated comes from these files or
not at all. Odoo 14 imports a term by its references (`#: model:...` names the record,
`#. module: bus` the module, `#. openerp-web` the web client's terms), so the `.po` files
must carry the `.pot`'s comments as well as its msgids.

The strings are found the way Odoo's exporter finds them: field labels, selection labels,
model descriptions and SQL constraint messages of the models; `_()` / `_lt()` in any Python
file; `_t()` / `_lt()` in `static/src` JS; texts and labels of QWeb and view XML.
"""

import ast
import collections
import io
import json
import re
import tokenize
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bus_fixtures import GOLDEN, ROOT
from po_files import parse, plural_function

MODULE = 'bus'
I18N = ROOT / 'i18n'
POT = I18N / f'{MODULE}.pot'
GOLDEN_I18N = json.loads((GOLDEN / 'odoo14_i18n.json').read_text(encoding='utf-8'))
LANGUAGES = GOLDEN_I18N['languages']
SKIPPED_DIRS = {'node_modules', '__pycache__'}  # and hidden folders (.git, .venv)
WEB_COMMENT = 'openerp-web'

# Stock msgids this addon no longer has, each with the reason: none so far, every
# user-visible string of the stock addon still exists here under the stock wording.
RETIRED_STOCK_MSGIDS: dict = {}

# Descriptions that `base` gives the models this addon extends: Odoo exports them in
# bus.pot too, since extending a model gives it a `bus.model_...` xmlid.
BASE_DESCRIPTIONS = {'res.partner': 'Contact', 'res.users': 'Users'}

# Odoo 14's automatic fields and their labels; an extended model gets only the first three
# under this module's name, a new model all of them (the last four when `_log_access`).
MAGIC_FIELDS = [('id', 'ID'), ('display_name', 'Display Name'), ('__last_update', 'Last Modified on')]
LOG_ACCESS_FIELDS = [('create_uid', 'Created by'), ('create_date', 'Created on'),
                     ('write_uid', 'Last Updated by'), ('write_date', 'Last Updated on')]

# position of the label among a field's positional arguments (Odoo's signatures)
LABEL_POSITION = {'Many2one': 1, 'One2many': 2, 'Many2many': 4, 'Selection': 1, 'Reference': 1}
XML_LABEL_ATTRIBUTES = ('string', 'title', 'alt', 'label', 'placeholder', 'aria-label', 'help', 'confirm')
PLACEHOLDER = re.compile(r'%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrx%]|\{[\w.]*\}')
TECHNICAL_TOKEN = re.compile(r'\b[A-Za-z_]\w*\.[A-Za-z_][\w.]*\b')  # bus.Bus, res.partner


class Terms:
    """msgid -> its references (repeated per occurrence, as Odoo writes them), flags, comments."""

    def __init__(self) -> None:
        self.references = collections.defaultdict(list)
        self.web = set()

    def model(self, msgid: str, reference: str, kind: str = 'model') -> None:
        self.references[msgid].append(f'{kind}:{reference}')

    def code(self, msgid: str, path: Path, web: bool = False) -> None:
        self.references[msgid].append(f'code:addons/{MODULE}/{path.relative_to(ROOT).as_posix()}:0')
        if web:
            self.web.add(msgid)

    def expected(self, msgid: str) -> tuple:
        refs = sorted(self.references[msgid])
        flags = ['python-format'] if any(ref.startswith('code:') for ref in refs) else []
        comments = [f'module: {MODULE}'] + ([WEB_COMMENT] if msgid in self.web else [])
        return refs, flags, comments


def source_files(pattern: str, under: Path = ROOT) -> list:
    found = []
    for path in sorted(under.rglob(pattern)):
        parts = path.relative_to(ROOT).parts
        if not any(part.startswith('.') or part in SKIPPED_DIRS for part in parts[:-1]):
            found.append(path)
    return found


def literal(node):
    """The value of a literal node, None for anything computed (works on Python 3.7's ast too)."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def default_label(name: str) -> str:
    """Odoo's label for a field without `string`: 'user_id' -> 'User', 'tag_ids' -> 'Tag'."""
    base = name[:-4] if name.endswith('_ids') else name[:-3] if name.endswith('_id') else name
    return base.replace('_', ' ').title()


def extract_model(terms: Terms, body: list) -> None:
    attrs = {}
    fields = []
    for statement in body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Name) and statement.value is not None:
                    attrs[target.id] = statement.value
                    fields.append((target.id, statement.value))

    def attr(key, default=None):
        return literal(attrs[key]) if key in attrs else default

    name, inherit = attr('_name'), attr('_inherit')
    if isinstance(inherit, list):
        assert len(inherit) == 1, f"several _inherit ({inherit}): name the exported model explicitly"
        inherit = inherit[0]
    model = name or inherit
    if not isinstance(model, str):
        return
    slug = model.replace('.', '_')
    new = name is not None and name != inherit
    if new:
        description = attr('_description')
        assert description, f"{model} has no literal _description"
        log_access = attr('_log_access', True)
    else:
        assert model in BASE_DESCRIPTIONS, f"add base's _description of the extended model {model}"
        description = BASE_DESCRIPTIONS[model]
        log_access = False
    terms.model(description, f'ir.model,name:{MODULE}.model_{slug}')
    for field, label in MAGIC_FIELDS + (LOG_ACCESS_FIELDS if log_access else []):
        terms.model(label, f'ir.model.fields,field_description:{MODULE}.field_{slug}__{field}')

    for constraint in attr('_sql_constraints', []):
        key, _definition, message = constraint
        terms.model(message, f'ir.model.constraint,message:{MODULE}.constraint_{slug}_{key}')

    for field, value in fields:
        call = value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id == 'fields'):
            continue
        kind = call.func.attr
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        position = LABEL_POSITION.get(kind, 0)
        label = literal(keywords['string']) if 'string' in keywords else (
            literal(call.args[position]) if len(call.args) > position else None)
        if label is None and 'related' not in keywords:
            label = default_label(field)
        if label:
            terms.model(label, f'ir.model.fields,field_description:{MODULE}.field_{slug}__{field}')
        if 'help' in keywords:
            terms.model(literal(keywords['help']), f'ir.model.fields,help:{MODULE}.field_{slug}__{field}')
        if kind in ('Selection', 'Reference'):
            selection = keywords.get('selection', keywords.get('selection_add', call.args[0] if call.args else None))
            pairs = literal(selection) if selection is not None else None
            for value_label in pairs if isinstance(pairs, list) else []:  # not a method name
                if isinstance(value_label, (list, tuple)) and len(value_label) == 2:
                    terms.model(value_label[1], f'ir.model.fields.selection,name:{MODULE}.selection__{slug}__'
                                                f'{field}__{value_label[0]}')


def gettext_calls(source: str) -> list:
    """Literal first arguments of `_()` / `_lt()` calls, found from tokens as Babel (Odoo's
    extractor) does: any Python file counts, even one newer than the running Python."""
    found = []
    tokens = [token for token in tokenize.generate_tokens(io.StringIO(source).readline)
              if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT)]
    for index, token in enumerate(tokens[:-2]):
        before = tokens[index - 1].string if index else ''
        if token.type != tokenize.NAME or token.string not in ('_', '_lt') or before in ('.', 'def'):
            continue
        if tokens[index + 1].string != '(':
            continue
        parts = []
        for following in tokens[index + 2:]:
            if following.type != tokenize.STRING:
                break
            parts.append(following.string)
        end = tokens[index + 2 + len(parts)].string if index + 2 + len(parts) < len(tokens) else ''
        if parts and end in (')', ','):
            try:
                msgid = ast.literal_eval(' '.join(parts))
            except (ValueError, SyntaxError):  # an f-string: nothing Odoo could translate
                continue
            if isinstance(msgid, str):
                found.append(msgid)
    return found


def extract_python(terms: Terms) -> None:
    model_dirs = {ROOT / 'models', ROOT / 'controllers'}
    for path in source_files('*.py'):
        source = path.read_text(encoding='utf-8')
        for msgid in gettext_calls(source):
            terms.code(msgid, path)
        if path.parent in model_dirs:  # Odoo imports these: they parse on every supported Python
            for node in ast.walk(ast.parse(source, str(path))):
                if isinstance(node, ast.ClassDef):
                    extract_model(terms, node.body)


JS_CALL = re.compile(r'''\b_l?t\(\s*(?:'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)")\s*[,)]''')


def extract_js(terms: Terms) -> None:
    for path in source_files('*.js', ROOT / 'static' / 'src'):
        for match in JS_CALL.finditer(path.read_text(encoding='utf-8')):
            raw = match.group(1) if match.group(1) is not None else match.group(2)
            terms.code(re.sub(r'\\(.)', r'\1', raw), path, web=True)


def element_texts(element):
    """Texts and label attributes of an XML tree, as Odoo's QWeb term extraction takes them."""
    if element.tag in ('script', 'style'):
        return
    for attribute in XML_LABEL_ATTRIBUTES:
        if element.get(attribute, '').strip():
            yield element.get(attribute).strip()
    if (element.text or '').strip():
        yield ' '.join(element.text.split())
    for child in element:
        yield from element_texts(child)
        if (child.tail or '').strip():
            yield ' '.join(child.tail.split())


def extract_xml(terms: Terms) -> None:
    for path in source_files('*.xml', ROOT / 'static' / 'src'):
        for text in element_texts(ET.parse(path).getroot()):
            terms.code(text, path, web=True)
    for path in source_files('*.xml', ROOT / 'views'):
        for element in ET.parse(path).getroot().iter():
            xmlid = element.get('id', '')
            reference = f'{MODULE}.{xmlid}' if '.' not in xmlid else xmlid
            if element.tag == 'template' or (element.tag == 'record' and element.get('model') == 'ir.ui.view'):
                arch = element if element.tag == 'template' else element.find("field[@name='arch']")
                for text in element_texts(arch) if arch is not None else []:
                    terms.model(text, f'ir.ui.view,arch_db:{reference}', kind='model_terms')
            elif element.tag == 'menuitem' and element.get('name'):
                terms.model(element.get('name'), f'ir.ui.menu,name:{reference}')
            elif element.tag == 'record' and element.get('model', '').startswith('ir.actions.'):
                name = element.find("field[@name='name']")
                if name is not None and (name.text or '').strip():
                    terms.model(name.text.strip(), f"{element.get('model')},name:{reference}")


def code_terms() -> Terms:
    terms = Terms()
    extract_python(terms)
    extract_js(terms)
    extract_xml(terms)
    return terms


@pytest.fixture(scope='module')
def terms():
    return code_terms()


@pytest.fixture(scope='module')
def pot():
    return parse(POT)


def comparable(entry) -> tuple:
    return sorted(entry.references), sorted(entry.flags), entry.extracted


# -- the template ---------------------------------------------------------------

def test_extractor_finds_the_known_kinds_of_strings(terms):
    """Guards the extractor itself: one string of each kind it must see in this code."""
    refs = terms.references
    assert 'model:ir.model,name:bus.model_bus_bus' in refs['Communication Bus']
    assert 'model:ir.model.fields.selection,name:bus.selection__bus_presence__status__away' in refs['Away']
    assert 'model:ir.model.constraint,message:bus.constraint_bus_presence_bus_user_presence_unique' in \
        refs['A user can only have one IM status.']
    assert refs['bus.Bus not available in test mode'] == ['code:addons/bus/controllers/main.py:0']
    assert refs['Refresh'] == ['code:addons/bus/static/src/js/web_client_bus.js:0'] * 2
    assert 'model:ir.model.fields,field_description:bus.field_bus_bus__create_uid' in refs['Created by']
    assert 'model:ir.model.fields,field_description:bus.field_bus_presence__create_uid' not in refs['Created by']


def test_pot_holds_exactly_the_strings_of_the_code(terms, pot):
    found = set(terms.references)
    exported = {entry.msgid for entry in pot.entries}
    assert not found - exported, f"strings of the code missing from i18n/bus.pot: {sorted(found - exported)}"
    assert not exported - found, f"strings of i18n/bus.pot not in the code: {sorted(exported - found)}"


def test_pot_entries_carry_the_references_odoo_exports(terms, pot):
    for entry in pot.entries:
        assert comparable(entry) == terms.expected(entry.msgid), entry.msgid
        assert entry.msgstr == '', entry.msgid


def test_pot_has_odoo14_export_layout(pot):
    assert pot.header['Project-Id-Version'] == 'Odoo Server 14.0'
    assert pot.header['Content-Type'] == 'text/plain; charset=UTF-8'
    assert f'* {MODULE}' in pot.header_comments
    msgids = [entry.msgid for entry in pot.entries]
    assert msgids == sorted(msgids), "Odoo writes the entries sorted by msgid"


def test_stock_msgids_are_kept(pot):
    exported = {entry.msgid for entry in pot.entries}
    missing = set(GOLDEN_I18N['msgids']) - exported
    assert missing == set(RETIRED_STOCK_MSGIDS), f"stock msgids lost without a stated reason: {sorted(missing)}"


# -- the translations ---------------------------------------------------------------

def test_po_files_are_the_stock_languages():
    shipped = sorted(path.stem for path in I18N.glob('*.po'))
    assert shipped == sorted(LANGUAGES)
    assert len(LANGUAGES) == 82


@pytest.mark.parametrize('code', LANGUAGES)
def test_po_file_translates_every_msgid(code, pot):
    po = parse(I18N / f'{code}.po')
    assert po.header['Language'] == code
    assert po.header['Content-Type'] == 'text/plain; charset=UTF-8'
    assert po.header['Project-Id-Version'] == 'Odoo Server 14.0'
    nplurals, plural = plural_function(po.header['Plural-Forms'])
    assert all(0 <= plural(n) < nplurals for n in range(1001)), po.header['Plural-Forms']

    template = pot.by_msgid()
    translations = po.by_msgid()
    assert set(translations) == set(template), f"{code}: msgids differ from bus.pot"
    for msgid, entry in translations.items():
        assert entry.msgstr.strip(), f"{code}: {msgid!r} is not translated"
        assert entry.msgstr == entry.msgstr.strip(), f"{code}: {msgid!r} has stray spaces"
        assert comparable(entry) == comparable(template[msgid]), f"{code}: {msgid!r} lost its references"
        assert sorted(PLACEHOLDER.findall(entry.msgstr)) == sorted(PLACEHOLDER.findall(msgid)), (code, msgid)
        for token in TECHNICAL_TOKEN.findall(msgid):
            assert token in entry.msgstr, f"{code}: {msgid!r} must keep {token!r} as is"


# Scripts the translations must be written in (a handful of short labels such as "ID" may
# stay in Latin letters, as these languages' software commonly keeps them).
SCRIPTS = {
    'Arabic': (r'[\u0600-\u06ff]', ['ar', 'ckb', 'fa', 'ur']),
    'Hebrew': (r'[\u0590-\u05ff]', ['he']),
    'Cyrillic': (r'[\u0400-\u04ff]', ['bg', 'mk', 'mn', 'ru', 'sr', 'uk']),
    'Greek': (r'[\u0370-\u03ff]', ['el']),
    'Armenian': (r'[\u0530-\u058f]', ['hy']),
    'Georgian': (r'[\u10a0-\u10ff]', ['ka']),
    'Ethiopic': (r'[\u1200-\u137f]', ['am']),
    'Devanagari': (r'[\u0900-\u097f]', ['hi', 'ne']),
    'Bengali': (r'[\u0980-\u09ff]', ['bn']),
    'Gujarati': (r'[\u0a80-\u0aff]', ['gu']),
    'Tamil': (r'[\u0b80-\u0bff]', ['ta']),
    'Malayalam': (r'[\u0d00-\u0d7f]', ['ml_IN']),
    'Sinhala': (r'[\u0d80-\u0dff]', ['si']),
    'Thai': (r'[\u0e00-\u0e7f]', ['th']),
    'Lao': (r'[\u0e80-\u0eff]', ['lo']),
    'Khmer': (r'[\u1780-\u17ff]', ['km']),
    'Japanese': (r'[\u3040-\u30ff\u4e00-\u9fff]', ['ja']),
    'Hangul': (r'[\uac00-\ud7af]', ['ko']),
    'Han': (r'[\u4e00-\u9fff]', ['zh_CN', 'zh_TW']),
}
SCRIPT_OF = {code: (name, pattern) for name, (pattern, codes) in SCRIPTS.items() for code in codes}


@pytest.mark.parametrize('code', LANGUAGES)
def test_po_file_is_in_the_language_and_its_script(code):
    entries = parse(I18N / f'{code}.po').entries
    msgstrs = [entry.msgstr for entry in entries]
    if code in SCRIPT_OF:
        name, pattern = SCRIPT_OF[code]
        written = [text for text in msgstrs if re.search(pattern, text)]
        assert len(written) >= 0.85 * len(msgstrs), f"{code}: translations not in {name} script"
    else:  # Latin script, sr@latin included
        assert not [text for text in msgstrs if re.search(r'[\u0400-\u04ff]', text)], code
    if not code.startswith('en'):
        untouched = [entry.msgid for entry in entries if entry.msgstr == entry.msgid]
        assert len(untouched) <= 0.4 * len(entries), f"{code}: mostly English ({untouched})"
