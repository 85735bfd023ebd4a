# SPDX-License-Identifier: LGPL-2.1-or-later
"""Everything the code offers has its man page text.

Reads the code's own tables, never a list kept here: the verbs of
cli/vfioctl.c, the option words of lib/options.c, the getopt options of
vfioctl and vfiod, every environment variable read (getenv and the
VFIOD_ENV_* names), the exit statuses, the keys of daemon/config.c, the
D-Bus members of the daemon's vtables, and the UAPI names, parameters and
errors of the vfio_select module.  tests/dbus/test_dbus.py's TestDocumented
compares org.vfiod1(5) with a live daemon's introspection; this test needs no
bus and checks the same page against the vtables' source, plus every other page.
"""
import glob
import os
import re
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
MAN = os.path.join(SOURCE, "man")


def read(*path):
    with open(os.path.join(SOURCE, *path)) as f:
        return f.read()


def sources(*patterns):
    out = []
    for p in patterns:
        out += sorted(glob.glob(os.path.join(SOURCE, p)))
    return out


def page(name):
    return read("man", name)


def plain(roff):
    """The page's text with font escapes and \\- \\& resolved."""
    t = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\e", "", roff)
    return t.replace("\\-", "-").replace("\\(->", "->")


def section(roff, title):
    """The text of one .SH section (empty when the page has none)."""
    m = re.search(rf'^\.SH "?{re.escape(title)}"?\s*$(.*?)(?=^\.SH |\Z)', roff, re.M | re.S)
    return m.group(1) if m else ""


def marked_words(roff):
    """Every word of a font macro line (.B, .BR, .BI, ...) or of a \\fB run: the words a
    page sets apart as names, not the words of its prose."""
    words = set()
    for line in roff.splitlines():
        m = re.match(r"\.(B|BR|RB|BI|IB|TP)\s+(.*)", line)
        if m:
            words.update(re.findall(r"[\w.-]+", plain(m.group(2))))
        for b in re.findall(r"\\fB(.*?)\\f[RPI]", line):
            words.update(re.findall(r"[\w.-]+", plain(b)))
    return words


def c_verbs():
    text = read("cli", "vfioctl.c")
    table = text.split("static const struct verb verbs[] = {", 1)[1].split("\n};", 1)[0]
    return re.findall(r'\{\s*"([a-z][a-z-]*)",\s*"([^"]*)",\s*(?:"(\w+)"|NULL)', table)


def longopts(path):
    text = read(*path)
    block = text.split("struct option longopts[] = {", 1)[1].split("};", 1)[0]
    return re.findall(r'\{\s*"([\w-]+)",\s*\w+,\s*NULL,\s*\'(\w)\'', block)


def optstring(path):
    """The short options getopt_long() is given."""
    return re.search(r'getopt_long\(argc, argv, "\+?([^"]*)"', read(*path)).group(1).replace(":", "")


def exit_statuses(paths):
    codes = set()
    for p in paths:
        with open(p) as f:
            text = f.read()
        if "EXIT_SUCCESS" in text:
            codes.add(0)
        if "EXIT_FAILURE" in text:
            codes.add(1)
        codes.update(int(n) for n in re.findall(r"#define EXIT_\w+ (\d+)", text))
        if "int main(" in text:
            main = text.split("int main(", 1)[1]
            codes.update(int(n) for n in re.findall(r"\breturn (\d+);", main))
    return codes


def env_names():
    """{variable: set of source files reading it}."""
    defines = {}
    for h in sources("lib/*.h", "lib/bus/*.h", "daemon/*.h", "cli/*.h"):
        with open(h) as f:
            defines.update(re.findall(r'#define (VFIOD_ENV_\w+) "(\w+)"', f.read()))
    found = {v: set() for v in defines.values()}
    call = re.compile(r'\b(?:secure_)?getenv\s*\(\s*(?:"(\w+)"|(\w+))|'
                      r'\b\w*_env\s*\(\s*(?:"(\w+)"|(VFIOD_ENV_\w+))')
    for c in sources("lib/*.c", "lib/bus/*.c", "daemon/*.c", "cli/*.c"):
        with open(c) as f:
            for m in call.finditer(f.read()):
                lit = m.group(1) or m.group(3)
                sym = m.group(2) or m.group(4)
                name = lit or defines.get(sym)
                if name:
                    found.setdefault(name, set()).add(os.path.relpath(c, SOURCE))
    return found


class TestVfioctl(unittest.TestCase):
    man = page("vfioctl.8")

    def test_every_verb(self):
        verbs = c_verbs()
        self.assertGreater(len(verbs), 8)
        headings = section(self.man, "VERBS") + "".join(
            section(self.man, s) for s in re.findall(r"^\.SH (.*)$", self.man, re.M))
        for verb, usage, method in verbs:
            with self.subTest(verb=verb):
                # A paragraph tag that starts with the verb.
                self.assertRegex(headings, rf'(?m)^\.TP\n\.(B|BI|BR) "?{re.escape(verb)}\b',
                                 f"no paragraph of vfioctl(8) is tagged with the verb {verb}")

    def test_every_option_word(self):
        text = read("lib", "options.c")
        words = set(re.findall(r'^\t\{ "\w+", "(\w+)", "', text, re.M))
        self.assertGreater(len(words), 10)
        marked = marked_words(self.man)
        for w in sorted(words):
            with self.subTest(word=w):
                self.assertTrue(w in marked, f"option word {w!r} is in no vfioctl(8) synopsis or tag")

    def test_every_command_line_option(self):
        opts = longopts(("cli", "vfioctl.c"))
        self.assertGreater(len(opts), 5)
        shorts = optstring(("cli", "vfioctl.c"))
        text = section(self.man, "OPTIONS")
        for name, short in opts:
            with self.subTest(option=name):
                self.assertIn(f"\\-\\-{name}", text)
                if short in shorts:
                    self.assertIn(f"\\-{short}", text)

    def test_every_exit_status(self):
        codes = exit_statuses(sources("cli/*.c"))
        self.assertTrue({0, 1, 2} <= codes, codes)
        text = section(self.man, "EXIT STATUS")
        for c in sorted(codes):
            with self.subTest(status=c):
                self.assertRegex(text, rf"(?m)^\.B {c}$")

    def test_every_method_a_verb_calls(self):
        org = plain(page("org.vfiod1.5"))
        for verb, usage, method in c_verbs():
            if method:  # a method, or a signal (monitor)
                with self.subTest(verb=verb, member=method):
                    self.assertRegex(org, rf"(?m)^\.B \"?{method}\b")


class TestVfiod(unittest.TestCase):
    man = page("vfiod.8")

    def test_every_command_line_option(self):
        text = section(self.man, "OPTIONS")
        synopsis = section(self.man, "SYNOPSIS")
        shorts = optstring(("daemon", "main.c"))
        for name, short in longopts(("daemon", "main.c")):
            with self.subTest(option=name):
                self.assertIn(f"\\-\\-{name}", text)
                self.assertIn(f"\\-\\-{name}", synopsis)
                if short in shorts:
                    self.assertIn(f"\\-{short}", text)

    def test_every_exit_status(self):
        codes = exit_statuses([os.path.join(SOURCE, "daemon", "main.c")])
        self.assertTrue({0, 1} <= codes, codes)
        text = section(self.man, "EXIT STATUS")
        for c in sorted(codes):
            with self.subTest(status=c):
                self.assertRegex(text, rf"(?m)^\.B {c}$")

    def test_the_unit_and_files(self):
        unit = read("systemd", "vfiod.service.in")
        for ref in re.findall(r"man:([\w.]+)\((\d)\)", unit):
            with self.subTest(page=ref):
                self.assertTrue(os.path.exists(os.path.join(MAN, f"{ref[0]}.{ref[1]}")))
        files = section(self.man, "FILES")
        for f in ("org.vfiod1.conf", "org.vfiod1.service", "org.vfiod1.policy", "vfiod.conf",
                  "60-vfiod.rules", "sysusers.d/vfiod.conf", "tmpfiles.d/vfiod.conf",
                  "/run/cdi/vfiod.json"):
            with self.subTest(file=f):
                self.assertIn(f, files)


class TestEnvironment(unittest.TestCase):
    def test_every_variable(self):
        env = env_names()
        self.assertGreater(len(env), 8)
        pages = {p: section(page(p), "ENVIRONMENT") for p in ("vfioctl.8", "vfiod.8")}
        for name, files in sorted(env.items()):
            want = set()
            for f in files or {"lib/"}:
                if f.startswith("lib/") or os.path.basename(f).startswith("bus-"):
                    want |= {"vfioctl.8", "vfiod.8"}
                elif f.startswith("daemon/"):
                    want.add("vfiod.8")
                else:
                    want.add("vfioctl.8")
            for p in sorted(want):
                with self.subTest(variable=name, page=p, read_in=sorted(files)):
                    self.assertRegex(pages[p], rf"(?m)^\.B {name}$", f"{name} not in {p}'s ENVIRONMENT")


class TestConfig(unittest.TestCase):
    def test_every_key(self):
        text = read("daemon", "config.c")
        keys = set(re.findall(r'streq\(l, "(\w+)"\)', text))
        self.assertTrue(keys)
        man = page("vfiod.conf.5")
        shipped = read("systemd", "vfiod.conf")
        for k in sorted(keys):
            with self.subTest(key=k):
                self.assertRegex(section(man, "OPTIONS"), rf"(?m)^\.BI {k}= ")
                self.assertRegex(shipped, rf"(?m)^#{k}=")
        env = re.findall(r"getenv\((\w+)\)", text)
        for e in env:
            name = re.search(rf'#define {e} "(\w+)"', read("lib", "bus", "bus-names.h")).group(1)
            with self.subTest(variable=name):
                self.assertRegex(section(man, "ENVIRONMENT"), rf"(?m)^\.B {name}$")


class TestDbus(unittest.TestCase):
    def test_every_vtable_member(self):
        man = plain(page("org.vfiod1.5"))
        members = set()
        for c in sources("daemon/*.c"):
            with open(c) as f:
                members.update(re.findall(
                    r'SD_BUS_(?:METHOD|PROPERTY|SIGNAL|WRITABLE_PROPERTY)\w*\(\s*"(\w+)"',
                    f.read()))
        self.assertGreater(len(members), 10)
        for m in sorted(members):
            with self.subTest(member=m):
                self.assertRegex(man, rf"\b{m}\b")


class TestVfioSelect(unittest.TestCase):
    man = page("vfio_select.4")
    uapi = read("kernel", "include", "uapi", "linux", "vfio_select.h")
    module = read("kernel", "vfio_select", "vfio_select.c")

    def test_every_uapi_name(self):
        names = set(re.findall(r"\b(VFIO_SELECT_[A-Z0-9_]+)\b", self.uapi))
        names = {n for n in names if not n.endswith(("_MAX", "_UNSPEC"))
                 and not n.startswith("__") and not n.endswith("_") and n not in ("VFIO_SELECT_GENL_NAME",
                                                          "VFIO_SELECT_GENL_VERSION",
                                                          "VFIO_SELECT_MCGRP_EVENTS")}
        self.assertGreater(len(names), 15)
        marked = marked_words(self.man)
        for n in sorted(names):
            with self.subTest(name=n):
                self.assertIn(n, marked)
        # The family, its version and its group, by value.
        for define in ("VFIO_SELECT_GENL_NAME", "VFIO_SELECT_MCGRP_EVENTS"):
            value = re.search(rf'#define {define} "(\w+)"', self.uapi).group(1)
            self.assertIn(value, marked)
        version = re.search(r"#define VFIO_SELECT_GENL_VERSION (\d+)", self.uapi).group(1)
        self.assertRegex(section(self.man, "SYNOPSIS"), rf"version {version}\b")

    def test_every_command_is_described(self):
        cmds = re.findall(r"\.cmd\s*=\s*(VFIO_SELECT_CMD_\w+)", self.module)
        self.assertGreater(len(cmds), 3)
        text = section(self.man, "COMMANDS")
        for c in sorted(set(cmds)):
            with self.subTest(command=c):
                self.assertRegex(text, rf"(?m)^\.TP\n\.B {c}$")

    def test_every_parameter(self):
        params = re.findall(r"module_param\w*\((\w+),", self.module)
        if not params:
            self.assertRegex(section(self.man, "PARAMETERS"), r"(?m)^None\.")
        for p in params:
            with self.subTest(parameter=p):
                self.assertRegex(section(self.man, "PARAMETERS"), rf"(?m)^\.BI {p}= ")

    def test_every_errno(self):
        errs = set(re.findall(r"(?:return|\br =)\s+-(E[A-Z]+);", self.module))
        self.assertGreater(len(errs), 6)
        text = section(self.man, "ERRORS")
        for e in sorted(errs):
            with self.subTest(errno=e):
                self.assertRegex(text, rf"(?m)^\.BR? .*\b{e}\b")

    def test_every_extack_message(self):
        """Each message's longest fixed part (between its %-conversions) is in ERRORS."""
        msgs = re.findall(r'vs_err\([^"]*"((?:[^"\\]|\\.)*)"', self.module)
        self.assertGreater(len(msgs), 10)
        text = " ".join(plain(section(self.man, "ERRORS")).split())
        for msg in msgs:
            fixed = max((f.strip(" ()") for f in re.split(r"%\w", msg)), key=len)
            with self.subTest(message=msg):
                self.assertIn(fixed, text, f"extack message {msg!r} not in ERRORS")


class TestPages(unittest.TestCase):
    def test_every_page_renders_without_warnings(self):
        pages = sources("man/*.[1-9]")
        self.assertGreaterEqual(len(pages), 5)
        for p in pages:
            with self.subTest(page=os.path.basename(p)):
                r = subprocess.run(["groff", "-man", "-ww", "-z", "-t", p],
                                   capture_output=True, text=True,
                                   env=dict(os.environ, LC_ALL="C.UTF-8"))
                self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_every_reference_to_our_pages_exists(self):
        ours = {os.path.basename(p).rsplit(".", 1)[0] for p in sources("man/*.[1-9]")}
        for p in sources("man/*.[1-9]", "README.md"):
            with open(p) as f:
                text = plain(f.read())
            for name, sec in re.findall(r"([\w.]+)\s*\(([1-9])\)", text):
                if name in ours or name.startswith(("vfio", "org.vfiod")):
                    with self.subTest(page=os.path.basename(p), ref=f"{name}({sec})"):
                        self.assertTrue(os.path.exists(os.path.join(MAN, f"{name}.{sec}")))


if __name__ == "__main__":
    unittest.main()
