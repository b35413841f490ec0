#!/usr/bin/env python3
"""Writes runtime/src/unicode_class_tables.inc (the character classes below), unicode_decomposition_tables.inc
(kCombiningClasses, kDecompositions, kDecompositionData) and unicode_composition_tables.inc (kCompositions): the
code point ranges of the Unicode classes that the Llama-3 and
Qwen2 pre-tokenizer regexes use, as the regex engine of Hugging Face `tokenizers` (Oniguruma) defines them:

  kLetterRanges      \\p{L}  General_Category Lu | Ll | Lt | Lm | Lo
  kNumberRanges      \\p{N}  General_Category Nd | Nl | No
  kWhiteSpaceRanges  \\s     the White_Space property (PropList.txt): U+0009..U+000D, U+0085 and the categories
                            Zs | Zl | Zp (this is exactly how PropList.txt's White_Space list is made up; Python's
                            str.isspace() differs: it also counts U+001C..U+001F)

and the data of the NFC normalizer (Qwen2's tokenizer.json has one), restricted to the characters that the NFC
normalizer of `tokenizers` knows: it uses the crate unicode-normalization-alignments, whose tables are Unicode 9.0,
so a combining mark or decomposable character assigned later is, for it, a plain starter (class 0, no
decomposition). Python has no Unicode-age data, so the script asks the installed `tokenizers` which characters
it knows (nfc_known; canonical classes and decompositions never change once assigned, so knowing the character
is all that differs):

  kCombiningClasses  ranges of code points with the same non-zero Canonical_Combining_Class
  kDecompositions    full canonical decomposition (NFD of the one character) of every character that has one,
                     except the Hangul syllables (decomposed by arithmetic); its code points in kDecompositionData
  kCompositions      the primary composites: (first, second) -> composite for every character whose canonical
                     decomposition is two code points and that NFC recomposes (so Full_Composition_Exclusion is
                     left out), keyed first << 21 | second

The data comes from Python's unicodedata (its Unicode version is written into the file). Re-run after a Python
upgrade and commit the result:  python3 scripts/gen_unicode_tables.py
"""
import os
import sys
import unicodedata

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime", "src")


def ranges(predicate):
    """[(first, last)] inclusive ranges of the code points where predicate holds."""
    out = []
    start = None
    for cp in range(0x110000 + 1):
        inside = cp <= 0x10FFFF and predicate(cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def is_letter(cp):
    return unicodedata.category(chr(cp)) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def is_number(cp):
    return unicodedata.category(chr(cp)) in ("Nd", "Nl", "No")


def is_white_space(cp):
    return 0x09 <= cp <= 0x0D or cp == 0x85 or unicodedata.category(chr(cp)) in ("Zs", "Zl", "Zp")


def nfc_known_predicate():
    """known(ch): does the NFC normalizer of tokenizers know ch (a character with a non-zero class or a
    canonical decomposition)? It does when it normalizes these probes as Python's NFC does: ch, its NFD, and ch
    inside U+4E00 (a base that composes with nothing) before U+0334 (class 1) and after U+0301 (class 230), which
    a character it does not know (a starter to it) cannot move past."""
    try:
        from tokenizers import normalizers
    except ImportError:
        sys.exit("gen_unicode_tables.py: needs the tokenizers package (pip install tokenizers)")
    nfc = normalizers.NFC().normalize_str

    def known(ch):
        probes = [ch, unicodedata.normalize("NFD", ch), "\u4e00" + ch + "\u0334", "\u4e00\u0301" + ch]
        return all(nfc(p) == unicodedata.normalize("NFC", p) for p in probes)

    return known


def combining_class_ranges(known):
    out = []
    for cp in range(0x110000):
        ccc = unicodedata.combining(chr(cp))
        if ccc == 0 or not known(chr(cp)):
            continue
        if out and out[-1][1] == cp - 1 and out[-1][2] == ccc:
            out[-1][1] = cp
        else:
            out.append([cp, cp, ccc])
    return out


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


def decompositions(known):
    """[(code, [code points of its NFD])] for the characters NFD changes (Hangul syllables left out)."""
    out = []
    for cp in range(0x110000):
        if is_hangul_syllable(cp) or 0xD800 <= cp <= 0xDFFF:
            continue
        nfd = unicodedata.normalize("NFD", chr(cp))
        if nfd != chr(cp) and known(chr(cp)):
            out.append((cp, [ord(c) for c in nfd]))
    return out


def compositions(known):
    out = []
    for cp in range(0x110000):
        if is_hangul_syllable(cp) or 0xD800 <= cp <= 0xDFFF:
            continue
        fields = unicodedata.decomposition(chr(cp)).split()
        if len(fields) != 2 or fields[0].startswith("<"):
            continue
        first, second = (int(f, 16) for f in fields)
        if unicodedata.normalize("NFC", chr(first) + chr(second)) == chr(cp) and known(chr(cp)):
            out.append(((first << 21) | second, cp))
    return sorted(out)


def rows_table(name, type_name, items):
    lines = [f"inline constexpr {type_name} {name}[] = {{"]
    line = "   "
    for item in items:
        item = " " + item + ","
        if len(line) + len(item) > 116:
            lines.append(line)
            line = "   "
        line += item
    lines.append(line)
    lines.append("};")
    return "\n".join(lines)


def table(name, rows):
    return rows_table(name, "CodepointRange", [f"{{0x{first:X}, 0x{last:X}}}" for first, last in rows])


def tokenizers_version():
    import tokenizers
    return tokenizers.__version__


def header(what):
    return [
        f"// GENERATED by scripts/gen_unicode_tables.py from Python {sys.version.split()[0]} unicodedata, Unicode "
        f"{unicodedata.unidata_version}. Do not edit.",
        f"// {what}",
        "// Included inside namespace gsa::unicode, after the definitions of the structs CodepointRange,",
        "// CombiningClassRange, Decomposition and Composition (unicode_text.cpp).",
    ]


def write(name, parts):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w", encoding="ascii") as f:
        f.write("\n".join(parts) + "\n")
    print(f"wrote {os.path.normpath(path)}")


def main():
    known = nfc_known_predicate()
    nfc_note = (f"The NFC data holds only the characters that the NFC normalizer of tokenizers {tokenizers_version()} "
                "knows (Unicode 9.0).")
    write("unicode_class_tables.inc", header(
        "Inclusive code point ranges, sorted and disjoint; see the script for the class definitions.") + [
        f'inline constexpr const char* kUnicodeVersion = "{unicodedata.unidata_version}";',
        table("kLetterRanges", ranges(is_letter)),
        table("kNumberRanges", ranges(is_number)),
        table("kWhiteSpaceRanges", ranges(is_white_space)),
    ])
    data = []
    index = []
    for cp, codes in decompositions(known):
        index.append(f"{{0x{cp:X}, {len(data)}, {len(codes)}}}")
        data.extend(codes)
    write("unicode_decomposition_tables.inc", header("Canonical combining classes and decompositions. " + nfc_note) + [
        rows_table("kCombiningClasses", "CombiningClassRange",
                   [f"{{0x{a:X}, 0x{b:X}, {c}}}" for a, b, c in combining_class_ranges(known)]),
        rows_table("kDecompositions", "Decomposition", index),
        rows_table("kDecompositionData", "char32_t", [f"0x{c:X}" for c in data]),
    ])
    write("unicode_composition_tables.inc", header("Primary composites. " + nfc_note) + [
        rows_table("kCompositions", "Composition",
                   [f"{{0x{key:X}, 0x{cp:X}}}" for key, cp in compositions(known)]),
    ])


if __name__ == "__main__":
    main()
