#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a vmsync console log: parse its KTAP output and decide pass/fail.

Usage: ktap.py --arch ARCH [--plan PLAN] [--tests "NAME..."] CONSOLE_LOG
               [--json OUT.json]
       ktap.py --arch ARCH --observed CONSOLE_LOG
       ktap.py --arch ARCH --expected [--plan PLAN] [--tests "NAME..."]
       ktap.py --selftest

Top-level documents:
  kunit  the kernel's built-in KUnit run (e.g. Rust doctests), printed
         before guest init starts;
  init   the document printed by guest/init after "vmsync-init: reached
         init"; each of its results is one plan step.  Output of "run"
         and "shell" steps is nested 4 spaces deeper (kselftest_harness
         TAP nests further); KTAP that the kernel prints at column 0
         during a step (a KUnit test module) is attached to that step.

kselftest's runner (run_kselftest.sh, make run_tests) prefixes the output
of each test with "# " instead of indenting it.  After its "# selftests:
COLLECTION: TEST" line, lines at the runner's indent that start with "#"
are read with the prefix dropped, 4 spaces deeper, so the test's own KTAP
nests under the runner's result for it; its other lines (e.g. a shell's
error message) stay there as diagnostics.

Leaves (tests without subtests) are counted as passed, failed or skipped.
The log fails on: a failed leaf; a parent reported "ok" over failed
leaves; a "not ok" parent without failed leaves (counted as one failed
leaf); a plan that does not match the number of results; result numbers
duplicated or out of order; a document without a plan (except KUnit
parameterised subtests, which have none); kernel trouble (oops, BUG,
WARNING, RCU stall, ...) anywhere in the log, except, between the fault
injection markers, page allocation failure reports of exactly warn_alloc()'s
shape; a missing "vmsync-init: done" line.

What should have run: PLAN (default: "plan" next to CONSOLE_LOG, as
scripts/arch.sh writes it) gives init's steps, --tests the selftest filter
(VMSYNC_TESTS) and the manifest (--manifest, default scripts/expected.txt,
whose header describes its format) the results of each step and the skips
with their reasons, per arch.  The log also fails on: an empty plan; a plan
step not reported, reported out of order, or without manifest entries; a
step reported that is not in the plan; no KUnit document before init; a
result the manifest expects that is missing; one it does not list; a skip it
does not list, or for another reason; a skip it lists that passed; a result
reported twice; a filter that names a test the manifest does not list or
selects none; and, on arches the manifest gives the ivshmem BAR, a probe
that did not claim it, a vmsync.info BAR below 8 MiB, or no
vmsync-bar-expect line when bar_host_pattern ran.  These are problems: with
no failed leaf, scripts/check.sh counts them as one failure.

--observed prints the results CONSOLE_LOG reported as manifest lines for
ARCH (a failed result as a pass, the manifest's reason where it matches),
--expected what the manifest expects (every step without --plan): diff the
two to update the manifest.

Exit status 0 if the log passes, 1 if not, 2 on usage errors.
--json writes {"arch", "passed", "failed", "skipped", "problems": [str],
"leaves": [{"path", "result": "pass"|"fail"|"skip", "diag": [str]}]}.
"""

import argparse
import json
import os
import re
import sys

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'expected.txt')
REACHED = 'vmsync-init: reached init'
DONE = 'vmsync-init: done'
MARKER_RE = re.compile(r'^# vmsync-init: (begin|end) (\d+)(?: (.*))?$')

TIMESTAMP_RE = re.compile(r'^\[\s*\d+\.\d+\] ')
VERSION_RE = re.compile(r'^(?:KTAP|TAP) version \d+\s*$')
PLAN_RE = re.compile(r'^1\.\.(\d+)\s*(?:#(.*))?$')
RESULT_RE = re.compile(r'^(not ok|ok)(?=\s|$)(?:\s+(\d+))?(?:\s+-(?=\s|$))?\s*(.*)$')
SUBTEST_RE = re.compile(r'^#\s*Subtest:\s*(.*?)\s*$')
SKIP_RE = re.compile(r'^\s*(skip|todo)\b', re.IGNORECASE)
KSFT_HDR_RE = re.compile(r'^# selftests: \S+: \S+\s*$')
TROUBLE_RE = re.compile(
    r'(Oops|BUG:|WARNING:|Kernel panic|general protection fault|'
    r'Unable to handle kernel|kernel BUG|Call Trace:|UBSAN:|KASAN:|'
    r'kmemleak: [0-9]+ new suspected memory leaks|possible circular locking|'
    r'INFO: task .* blocked|INFO: .*detected stall|detected hard LOCKUP)')
# The selftests write these to /dev/kmsg around fault-injection sweeps.  In
# between, the report of a page allocation failure (mm/page_alloc.c
# warn_alloc(): the failure line, dump_stack() and show_mem()) is
# expected; it is excused line by line, by its shape, and the first line
# that does not fit ends it.  Everything else still counts.
INJECT_ON = 'vmsync: fault injection on'
INJECT_OFF = 'vmsync: fault injection off'
ALLOC_FAIL_RE = re.compile(
    r'^\S.*: page allocation failure: order:\d+, mode:0x[0-9a-f]+\([^)]*\), '
    r'nodemask=\S+?(?:,cpuset=\S+,mems_allowed=\S+)?$')
# After the failure line, in this order: dump_stack_print_info()'s lines,
# the stack (x86: " func+0x1/0x2 [mod]", "<TASK>"; RISC-V: "[<addr>] func"),
# then __show_mem().
ALLOC_REPORT = (
    ('head', re.compile(
        r'^(CPU: \d+ UID: \d+ PID: \d+ Comm: .*|Tainted: (\[\w\]=\w+ ?)+|'
        r'Hardware name: .*|Workqueue: .*|Stopper: .*|Sched_ext: .*)$')),
    ('trace', re.compile(r'^Call Trace:$')),
    ('trace', re.compile(
        r'^( <(/?)(TASK|IRQ|SOFTIRQ|NMI)>| (\? )?(\S+\+0x[0-9a-f]+/0x[0-9a-f]+'
        r'( \[[^]]+\])?|0x[0-9a-f]+)|\[<[0-9a-f]+>\] \S+)$')),
    ('mem', re.compile(r'^Mem-Info:$')),
    ('mem', re.compile(
        r'^( ?[a-z_]+:\d+( [a-z_]+:\d+)*|'
        r'Node \d+ active_anon:\d+kB .* all_unreclaimable\? (yes|no)|'
        r'(Node \d+ )?\w+ free:\d+kB .* free_cma:\d+kB|'
        r'lowmem_reserve\[\]:( -?\d+)+|'
        r'(Node \d+ )?\w+: (\d+\*\d+kB (\([A-Z]*\) )?)+= \d+kB|'
        r'Node \d+ hugepages_total=\d+ hugepages_free=\d+ hugepages_surp=\d+ '
        r'hugepages_size=\d+kB|'
        r'\d+ total pagecache pages|\d+ pages in swap cache|'
        r'(Free|Total) swap += -?\d+kB|'
        r'\d+ pages (RAM|HighMem/MovableOnly|reserved|cma reserved|hwpoisoned))$')),
)
PHASES = ('head', 'trace', 'mem')
# Output of a step, relayed by init 4 spaces deep, may come between the
# lines of a report: it neither fits nor ends it (and is judged as usual).
RELAYED = '    '


def alloc_report_line(phase, line):
    """The phase of the report after @line, or None if it does not fit."""
    for ph, rx in ALLOC_REPORT:
        if PHASES.index(ph) >= PHASES.index(phase) and rx.match(line):
            return ph
    return None


def trouble_lines(lines):
    """Lines reporting kernel trouble, less expected allocation failures."""
    out = []
    injecting = False
    phase = None        # in an allocation failure report: its phase
    for n, l in lines:
        if INJECT_ON in l:
            injecting = True
        elif INJECT_OFF in l:
            injecting = False
        if phase is not None and not l.startswith(RELAYED):
            phase = alloc_report_line(phase, l)
            if phase is not None:
                continue
        if injecting and ALLOC_FAIL_RE.match(l):
            phase = 'head'
            continue
        if TROUBLE_RE.search(l):
            out.append((n, l))
    return out


class Result:
    def __init__(self, ok, num, desc, directive, diag, subdocs, lineno):
        self.ok = ok
        self.num = num
        self.name = desc or ('#%s' % num if num is not None else '?')
        self.directive = directive
        self.diag = diag
        self.subdocs = subdocs
        self.lineno = lineno

    def status(self):
        if self.directive is not None and SKIP_RE.match(self.directive):
            return 'skip'
        return 'pass' if self.ok else 'fail'

    def reason(self):
        """Why it was skipped: the directive's text after SKIP, else that
        of a "1..0 # SKIP" plan nested below it; '' if neither says."""
        for text in [self.directive or ''] + [d.plan_directive
                                             for d in self.subdocs]:
            m = SKIP_RE.match(text)
            if m and text[m.end():].strip():
                return text[m.end():].strip()
        return ''


class Doc:
    def __init__(self, indent, lineno, parent=None, embedded=False):
        self.indent = indent
        self.lineno = lineno
        self.parent = parent
        self.embedded = embedded
        self.name = None
        self.version = False
        self.plan = None
        self.plan_directive = ''
        self.results = []
        self.pending = []       # finished subdocs awaiting our next result
        self.diag = []          # diagnostics since our last result
        self.step = None        # name from the last "begin" marker

    def started(self):
        return self.plan is not None or bool(self.results)

    def complete(self):
        return self.plan is not None and len(self.results) >= self.plan


def classify(body):
    if VERSION_RE.match(body):
        return 'version', None
    m = PLAN_RE.match(body)
    if m:
        return 'plan', (int(m.group(1)), (m.group(2) or '').strip())
    m = RESULT_RE.match(body)
    if m:
        rest = m.group(3)
        desc, hash_, directive = rest.partition('#')
        return 'result', (m.group(1) == 'ok',
                          int(m.group(2)) if m.group(2) else None,
                          desc.strip(),
                          directive.strip() if hash_ else None)
    m = SUBTEST_RE.match(body)
    if m:
        return 'subtest', m.group(1)
    if body.startswith('#'):
        return 'diag', body
    return 'other', None


class Parser:
    """Stack machine over one segment of the log; yields top-level docs."""

    def __init__(self):
        self.stack = []
        self.roots = []

    def pop(self):
        doc = self.stack.pop()
        if self.stack:
            self.stack[-1].pending.append(doc)
        return doc

    def push(self, doc):
        self.stack.append(doc)

    def new_sibling(self, indent, lineno):
        """A new document at the indent of the current top of stack."""
        top = self.stack[-1]
        if top.embedded or (top.parent is not None and
                            top.parent.indent < top.indent):
            self.pop()
            parent = self.stack[-1]
            doc = Doc(indent, lineno, parent, embedded=top.embedded)
        elif len(self.stack) == 1 and top.complete():
            self.stack.pop()
            doc = Doc(indent, lineno)
            self.roots.append(doc)
        else:
            doc = Doc(indent, lineno, top, embedded=True)
        self.push(doc)
        return doc

    def feed(self, lineno, indent, kind, data, body):
        if kind == 'other':
            return
        if not self.stack:
            if kind != 'version' or indent != 0:
                return
            doc = Doc(0, lineno)
            doc.version = True
            self.roots.append(doc)
            self.push(doc)
            return

        m = MARKER_RE.match(body) if kind == 'diag' else None
        if m:
            while len(self.stack) > 1:
                self.pop()
            if m.group(1) == 'begin':
                self.stack[0].step = m.group(3) or m.group(2)
            return

        while len(self.stack) > 1 and self.stack[-1].indent > indent:
            self.pop()
        top = self.stack[-1]

        if top.indent < indent:
            if kind == 'diag':
                top.diag.append(body)
                return
            top = Doc(indent, lineno, top)
            self.push(top)
        elif indent < top.indent:
            # Below the root's indent: not ours.
            return

        if kind == 'version':
            if top.version or top.started():
                top = self.new_sibling(indent, lineno)
            top.version = True
        elif kind == 'subtest':
            if top.started() or top.name is not None:
                top = self.new_sibling(indent, lineno)
            top.name = data
        elif kind == 'plan':
            if top.started():
                top = self.new_sibling(indent, lineno)
            top.plan, top.plan_directive = data
        elif kind == 'result':
            ok, num, desc, directive = data
            top.results.append(Result(ok, num, desc, directive, top.diag,
                                      top.pending, lineno))
            top.diag = []
            top.pending = []
            if top.embedded and top.complete():
                self.pop()
        elif kind == 'diag':
            top.diag.append(body)

    def finish(self):
        while self.stack:
            self.pop()
        return self.roots


def unwrap_kselftest(lines):
    """Undo the kselftest runner's "# " prefix (see the module docstring);
    repeated, so a runner inside a runner's test unwraps too."""
    while True:
        out = []
        block = None        # indent of the runner inside a test's output
        changed = False
        for lineno, line in lines:
            body = line.lstrip(' ')
            indent = len(line) - len(body)
            if block is not None and body:
                if (indent == block and body.startswith('#') and
                        not MARKER_RE.match(body)):
                    if KSFT_HDR_RE.match(body):
                        out.append((lineno, line))
                        continue
                    inner = body[2:]
                    text = inner.lstrip(' ')
                    if text and classify(text)[0] == 'other':
                        inner = inner[:len(inner) - len(text)] + '# ' + text
                    out.append((lineno, ' ' * (block + 4) + inner))
                    changed = True
                    continue
                # Kernel messages between the lines do not end the block;
                # the runner's result line (or any other KTAP line) does.
                if indent == block or classify(body)[0] != 'other':
                    block = None
            if KSFT_HDR_RE.match(body):
                block = indent
            out.append((lineno, line))
        if not changed:
            return out
        lines = out


def parse_segment(lines):
    p = Parser()
    for lineno, line in unwrap_kselftest(lines):
        body = line.lstrip(' ')
        if not body:
            continue
        kind, data = classify(body)
        p.feed(lineno, len(line) - len(body), kind, data, body)
    return p.finish()


class Judge:
    def __init__(self):
        self.leaves = []        # (path, status, diag, skip reason)
        self.problems = []

    def check_doc(self, doc, path):
        where = 'line %d' % doc.lineno
        if doc.plan is None:
            param = (doc.name is not None and doc.parent is not None and
                     doc.parent.name is not None)
            if not param:
                self.problems.append('%s: document without a plan (%s)'
                                     % (path, where))
        elif len(doc.results) != doc.plan:
            self.problems.append('%s: plan 1..%d but %d result(s) (%s)'
                                 % (path, doc.plan, len(doc.results), where))
        for i, r in enumerate(doc.results, 1):
            if r.num is not None and r.num != i:
                self.problems.append('%s: result %d is numbered %d: duplicated '
                                     'or out of order (line %d)'
                                     % (path, i, r.num, r.lineno))
                break
        if doc.pending:
            step = doc.step or '(unfinished)'
            self.problems.append('%s: subtest output without a result line '
                                 '(%s)' % (path, where))
            for sub in doc.pending:
                self.walk_doc(sub, path + '/' + step)

    def walk_doc(self, doc, path):
        self.check_doc(doc, path)
        for r in doc.results:
            self.walk_result(r, path + '/' + r.name)

    def walk_result(self, r, path):
        children = [c for d in r.subdocs for c in d.results]
        status = r.status()
        if not children:
            for d in r.subdocs:
                self.check_doc(d, path)
            self.leaves.append((path, status, clean_diag(r.diag), r.reason()))
            return
        before = self.nfailed()
        for d in r.subdocs:
            self.walk_doc(d, path)
        failed = self.nfailed() - before
        if status == 'pass' and failed:
            self.problems.append('%s: reported ok but %d subtest(s) failed'
                                 % (path, failed))
        if status == 'fail' and not failed:
            self.leaves.append((path, 'fail', clean_diag(r.diag), ''))

    def nfailed(self):
        return sum(1 for leaf in self.leaves if leaf[1] == 'fail')


def clean_diag(diag):
    return [d for d in diag if not MARKER_RE.match(d)]


def read_lines(text):
    lines = []
    for i, raw in enumerate(text.splitlines(), 1):
        line = raw.replace('\r', '').rstrip()
        line = TIMESTAMP_RE.sub('', line)
        lines.append((i, line))
    return lines


# --------------------------------------------------------------------------
# What should have run: the plan and the manifest (scripts/expected.txt).

# A kselftest_harness test: FIXTURE.TEST (or FIXTURE.VARIANT.TEST).
HARNESS_RE = re.compile(r'^\w+(?:\.\w+)*\.(\w+)$')
BAR_MISSING = 'no ivshmem BAR'
INFO_BAR_RE = re.compile(r'\bsync_mask=\S+ pmd_size=\S+ bar=(0x[0-9a-f]+|0) ')
BAR_EXPECT = 'vmsync-bar-expect '
BAR_MIN = 8 << 20


class ManifestError(Exception):
    pass


class Entry:
    def __init__(self, arches, path, status, reason, lineno):
        self.arches = arches
        self.path = path
        self.status = status        # 'pass' or 'skip'
        self.reason = reason
        self.lineno = lineno

    def wildcard(self):
        return self.path.endswith('/*')

    def test(self):
        """The harness test name, or None for other results."""
        m = HARNESS_RE.match(self.path.rsplit('/', 1)[-1])
        return m.group(1) if m else None

    def reason_matches(self, reason):
        rx = '.*'.join(re.escape(p) for p in self.reason.split('*'))
        return re.fullmatch(rx, reason) is not None

    def line(self, arch):
        skip = ' # SKIP %s' % self.reason if self.status == 'skip' else ''
        return '%s  %s%s' % (arch, self.path, skip)


class Manifest:
    """The format is described at the top of scripts/expected.txt."""

    def __init__(self, path):
        self.path = path
        self.arches = []
        self.ivshmem = set()
        self.entries = []
        groups = {}
        group = None
        with open(path) as f:
            for n, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith('#'):
                    continue
                words = line.split()
                if words[0] == '@arches':
                    self.arches = words[1:]
                elif words[0] == '@ivshmem' and len(words) == 2:
                    self.ivshmem = self.arch_set(words[1], n)
                elif words[0] == '@group' and len(words) == 2 and not group:
                    group = groups.setdefault(words[1], [])
                elif words[0] == '@end' and group is not None:
                    group = None
                elif words[0].startswith('@'):
                    self.error(n, 'bad directive: %s' % line)
                elif group is not None:
                    group.append(self.entry(line, n))
                else:
                    self.add(self.entry(line, n), groups)
        if group is not None:
            self.error(n, '@group without @end')

    def error(self, n, what):
        raise ManifestError('%s:%d: %s' % (self.path, n, what))

    def arch_set(self, word, n):
        if not self.arches:
            self.error(n, '@arches must come first')
        names = [] if word == '*' else word.lstrip('!').split(',')
        bad = [a for a in names if a not in self.arches]
        if bad:
            self.error(n, 'unknown arch %s (@arches: %s)'
                       % (', '.join(bad), ' '.join(self.arches)))
        if word == '*' or word.startswith('!'):
            return set(self.arches) - set(names)
        return set(names)

    def entry(self, line, n):
        head, hash_, directive = line.partition('#')
        word, _, path = head.strip().partition(' ')
        path = path.strip()
        if not path:
            self.error(n, 'no path: %s' % line)
        status, reason = 'pass', ''
        if hash_:
            m = re.fullmatch(r'\s*SKIP\s+(\S.*)', directive)
            if not m:
                self.error(n, 'only "# SKIP REASON" may follow a path')
            status, reason = 'skip', m.group(1).strip()
        return Entry(self.arch_set(word, n), path, status, reason, n)

    def add(self, e, groups):
        prefix, at, name = e.path.rpartition('/@')
        if not at:
            self.entries.append(e)
            return
        if name not in groups:
            self.error(e.lineno, 'no @group %s before this line' % name)
        for g in groups[name]:
            self.entries.append(Entry(e.arches & g.arches,
                                      prefix + '/' + g.path, g.status,
                                      g.reason, g.lineno))

    def for_arch(self, arch):
        if arch not in self.arches:
            raise ManifestError('%s: arch %s is not in @arches'
                                % (self.path, arch))
        out = {}
        for e in self.entries:
            if arch not in e.arches:
                continue
            if e.path in out:
                raise ManifestError('%s:%d: %s is listed twice for %s (line %d)'
                                    % (self.path, e.lineno, e.path, arch,
                                       out[e.path].lineno))
            out[e.path] = e
        return list(out.values())


def read_plan(text):
    """Step names of an init plan (scripts/guest/init.c), and the -t arguments of its
    vmsync_test step."""
    steps, tests = [], []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith('#'):
            continue
        name = words[1] if len(words) > 1 else 'step-%d' % (len(steps) + 1)
        steps.append(name)
        if name == 'vmsync_test':
            tests = [b for a, b in zip(words[3:], words[4:]) if a == '-t']
    return steps, tests


class Expect:
    """What a run of a plan must report on one arch, from the manifest."""

    def __init__(self, manifest, arch, plan_text, tests):
        self.arch = arch
        self.problems = []
        self.steps, plan_tests = read_plan(plan_text)
        self.ivshmem = arch in manifest.ivshmem
        entries = manifest.for_arch(arch)
        self.all = entries
        known = {e.test() for e in entries}
        for t in tests:
            if t not in known:
                self.problems.append('filter: -t %s names no test of the '
                                     'manifest for %s' % (t, arch))
        if 'vmsync_test' in self.steps and plan_tests != list(tests):
            self.problems.append('filter: the plan runs vmsync_test with "%s", '
                                 'the filter is "%s"'
                                 % (' '.join(plan_tests), ' '.join(tests)))
        tops = {e.path.split('/')[0] for e in entries}
        for s in self.steps:
            if s not in tops:
                self.problems.append('%s: in the plan, but the manifest has '
                                     'nothing for it on %s' % (s, arch))
        self.entries = [e for e in entries
                        if (e.path.split('/')[0] in self.steps or
                            e.path.startswith('kunit/')) and
                        (not tests or e.test() is None or e.test() in tests)]
        if tests and not any(e.test() for e in self.entries):
            self.problems.append('filter: "%s" selects no test'
                                 % ' '.join(tests))

    def check(self, steps, leaves, lines, kunit):
        """Problems of a run that reported @steps and @leaves."""
        out = list(self.problems)
        if not self.steps:
            out.append('init: the plan has no steps')
        for s in self.steps:
            if s not in steps:
                out.append('%s: in the plan but not reported' % s)
        for s in steps:
            if s not in self.steps:
                out.append('%s: reported but not in the plan' % s)
        if ([s for s in steps if s in self.steps] !=
                [s for s in self.steps if s in steps]):
            out.append('init: steps not in plan order: %s' % ' '.join(steps))
        if not kunit:
            out.append('kunit: no KUnit document before init')

        exact = {e.path: e for e in self.entries if not e.wildcard()}
        wild = [e for e in self.entries if e.wildcard()]
        seen = set()
        for path, status, _, reason in leaves:
            if path in seen:
                out.append('%s: reported twice' % path)
                continue
            seen.add(path)
            e = exact.get(path) or next(
                (w for w in wild if path.startswith(w.path[:-1])), None)
            if e is None:
                out.append('%s: %s, not in the manifest for %s'
                           % (path, status, self.arch))
                continue
            seen.add(e.path)
            if status == 'fail' or status == e.status:
                if (status == 'skip' and reason and
                        not e.reason_matches(reason)):
                    out.append('%s: skipped for "%s", the manifest says "%s" '
                               '(line %d)' % (path, reason, e.reason, e.lineno))
            elif status == 'skip':
                out.append('%s: unexpected skip (%s), the manifest expects a '
                           'pass (line %d)' % (path, reason or 'no reason',
                                               e.lineno))
            else:
                out.append('%s: passed, the manifest expects a skip: %s '
                           '(line %d)' % (path, e.reason, e.lineno))
        for e in self.entries:
            if e.path not in seen:
                out.append('%s: missing (manifest line %d)'
                           % (e.path, e.lineno))
        if self.ivshmem:
            out.extend(self.check_bar(lines))
        return out

    def check_bar(self, lines):
        out = []
        for n, l in lines:
            m = INFO_BAR_RE.search(l)
            if BAR_MISSING in l:
                out.append('probe_load: the probe claimed no ivshmem BAR, '
                           'which %s has (line %d: %s)'
                           % (self.arch, n, l.strip()))
            elif m and int(m.group(1), 0) < BAR_MIN:
                out.append('vmsync.info: a BAR of %s bytes, less than 8 MiB '
                           '(line %d)' % (m.group(1), n))
        hosted = [e.path for e in self.entries
                  if e.test() == 'bar_host_pattern' and e.status == 'pass']
        if hosted and not any(BAR_EXPECT in l for _, l in lines):
            out.append('%s: no "%s" line for the host check'
                       % (hosted[0], BAR_EXPECT.strip()))
        return out

    def observed(self, leaves):
        """The manifest lines of what @leaves reported, for this arch."""
        out = []
        exact = {e.path: e for e in self.all if not e.wildcard()}
        wild = [e for e in self.all if e.wildcard()]
        for path, status, _, reason in leaves:
            e = exact.get(path)
            w = None if e else next(
                (w for w in wild if path.startswith(w.path[:-1])), None)
            if w is not None and status == 'pass':
                line = w.line(self.arch)
            elif status == 'skip':
                if e and e.status == 'skip' and (
                        not reason or e.reason_matches(reason)):
                    reason = e.reason
                line = Entry(None, path, 'skip',
                             reason or '(no reason printed: say why)',
                             0).line(self.arch)
            else:
                line = '%s  %s' % (self.arch, path)
            if line not in out:
                out.append(line)
        return out


def judge(text, arch, expect=None):
    """Returns (report lines, summary dict); with an Expect, what ran is
    checked against it too."""
    lines = read_lines(text)
    out = []
    j = Judge()
    tops = []       # (name, [leaves], own status, diag)
    kunit = False
    steps = []

    reached = next((n for n, l in lines if REACHED in l), None)
    pre = [x for x in lines if reached is None or x[0] < reached]
    post = [x for x in lines if reached is not None and x[0] > reached]

    def top_leaves(fn):
        start = len(j.leaves)
        fn()
        return j.leaves[start:]

    for i, doc in enumerate(parse_segment(pre)):
        name = 'kunit' if i == 0 else 'kunit%d' % (i + 1)
        leaves = top_leaves(lambda: j.walk_doc(doc, name))
        tops.append((name, leaves, None, []))
        kunit = True

    if reached is None:
        j.problems.insert(0, 'boot never reached init')
    else:
        roots = parse_segment(post)
        if not roots:
            j.problems.append('init printed no KTAP document')
        for i, doc in enumerate(roots):
            prefix = '' if i == 0 else 'init%d/' % (i + 1)
            j.check_doc(doc, 'init' if i == 0 else 'init%d' % (i + 1))
            for r in doc.results:
                name = prefix + r.name
                steps.append(name)
                leaves = top_leaves(lambda: j.walk_result(r, name))
                tops.append((name, leaves, r.status(), clean_diag(r.diag)))
        if not any(DONE in l for _, l in post):
            j.problems.append('no "%s" line: init died or the run timed out'
                              % DONE)

    trouble = trouble_lines(lines)
    for n, l in trouble[:10]:
        j.problems.append('kernel trouble at line %d: %s' % (n, l.strip()))
    if len(trouble) > 10:
        j.problems.append('... and %d more kernel trouble lines'
                          % (len(trouble) - 10))

    if expect is not None:
        j.problems.extend(expect.check(steps, j.leaves, lines, kunit))
    for path, status, _, _ in j.leaves:
        if status == 'fail':
            j.problems.append('failed: %s' % path)

    count = {s: sum(1 for x in j.leaves if x[1] == s)
             for s in ('pass', 'fail', 'skip')}

    out.append('%s results:' % arch)
    for name, leaves, own, diag in tops:
        c = {s: sum(1 for x in leaves if x[1] == s)
             for s in ('pass', 'fail', 'skip')}
        mine = [p for p in j.problems
                if p.startswith(name + ':') or p.startswith(name + '/')]
        if c['fail'] or own == 'fail' or mine:
            word = 'FAIL'
        elif own == 'skip' or (leaves and c['skip'] == len(leaves)):
            word = 'skip'
        else:
            word = 'ok'
        out.append('  %-4s  %s (%d passed, %d failed, %d skipped)'
                   % (word, name, c['pass'], c['fail'], c['skip']))
        for path, status, ldiag, _ in leaves:
            if status != 'fail':
                continue
            out.append('          %s' % path)
            out.extend('            %s' % d for d in ldiag)
        if word == 'FAIL' and diag and not any(
                p == name for p, s, _, _ in leaves if s == 'fail'):
            out.extend('          %s' % d for d in diag)
    if reached is None:
        out.append('  last console lines:')
        out.extend('    | %s' % l for _, l in lines[-15:])
    for p in j.problems:
        out.append('  problem: %s' % p)
    out.append('%s: %d passed, %d failed, %d skipped'
               % (arch, count['pass'], count['fail'], count['skip']))

    summary = {
        'arch': arch,
        'passed': count['pass'],
        'failed': count['fail'],
        'skipped': count['skip'],
        'problems': j.problems,
        'leaves': [{'path': p, 'result': s, 'diag': d}
                   for p, s, d, _ in j.leaves],
    }
    return out, summary, j.leaves


# --------------------------------------------------------------------------
# Self-test

def _log(*parts):
    return '\n'.join(parts) + '\n'


_BOOT_KUNIT = _log(
    'Linux version 6.12.0 (vmsync)',
    '[    0.500000] KTAP version 1',
    '[    0.500001] 1..1',
    '[    0.500002]     KTAP version 1',
    '[    0.500003]     # Subtest: rust_doctests_kernel',
    '[    0.500004]     # speed: normal',
    '[    0.500005]     1..3',
    '[    0.500006]     ok 1 rust_doctest_kernel_a',
    '[    0.500007]         KTAP version 1',
    '[    0.500008]         # Subtest: param_case',
    '[    0.500009]         ok 1 param-0',
    '[    0.500010]         ok 2 param-1',
    '[    0.500011]     # param_case: pass:2 fail:0 skip:0 total:2',
    '[    0.500012]     ok 2 param_case',
    '[    0.500013]     ok 3 rust_doctest_kernel_c # SKIP not here',
    '[    0.500014] # rust_doctests_kernel: pass:2 fail:0 skip:1 total:3',
    '[    0.500015] ok 1 rust_doctests_kernel',
    'Run /init as init process')

_HARNESS_PASS = _log(
    '    TAP version 13',
    '    1..2',
    '    # Starting 2 tests from 1 test cases.',
    '    #  RUN           mapper.identity ...',
    '    #            OK  mapper.identity',
    '    ok 1 mapper.identity',
    '    #  RUN           mapper.data_alias ...',
    '    #            OK  mapper.data_alias',
    '    ok 2 mapper.data_alias',
    '    # PASSED: 2 / 2 tests passed.',
    '    # Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0')

# mm/page_alloc.c warn_alloc(): the report excused during fault injection.
_ALLOC_REPORT = _log(
    '[    1.1] vmsync_test: page allocation failure: order:0, '
    'mode:0xcc0(GFP_KERNEL), nodemask=(null)',
    '[    1.1] CPU: 0 UID: 0 PID: 71 Comm: vmsync_test Tainted: G'
    '           O       6.12.117 #1',
    '[    1.1] Tainted: [O]=OOT_MODULE',
    '[    1.1] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)',
    '[    1.1] Call Trace:',
    '[    1.1]  <TASK>',
    '[    1.1]  dump_stack_lvl+0x5d/0x80',
    '[    1.1]  warn_alloc+0x164/0x190',
    '    #  RUN           vmsync.fault_injection ...',
    '[    1.1]  ? __alloc_pages_noprof+0x1a2/0x1c0 [rust_vmsync_probe]',
    '[    1.1]  </TASK>',
    '[    1.1] Mem-Info:',
    '[    1.1] active_anon:0 inactive_anon:0 isolated_anon:0',
    '[    1.1]  active_file:0 inactive_file:0 isolated_file:0',
    '[    1.1]  free:240000 free_pcp:100 free_cma:0',
    '[    1.1] Node 0 active_anon:0kB inactive_anon:0kB shmem:0kB '
    'all_unreclaimable? no',
    '[    1.1] DMA32 free:960000kB boost:0kB min:1000kB free_cma:0kB',
    '[    1.1] lowmem_reserve[]: 0 0 0 0',
    '[    1.1] DMA32: 2*4kB (U) 1*8kB (M) 0*16kB = 16kB',
    '[    1.1] 1000 total pagecache pages',
    '[    1.1] 0 pages in swap cache',
    '[    1.1] Free swap  = 0kB',
    '[    1.1] Total swap = 0kB',
    '[    1.1] 262000 pages RAM',
    '[    1.1] 0 pages HighMem/MovableOnly',
    '[    1.1] 9000 pages reserved',
    '[    1.2] rcu: INFO: rcu_sched self-detected stall on CPU')

_SAMPLES = {
    'pass': _BOOT_KUNIT + _log(
        REACHED, 'KTAP version 1', '1..3',
        '# vmsync-init: begin 1 probe',
        'vmsync_probe: loading out-of-tree module taints kernel.',
        '# vmsync-init: end 1',
        'ok 1 probe',
        '# vmsync-init: begin 2 harness') + _HARNESS_PASS + _log(
        '# vmsync-init: end 2',
        'ok 2 harness',
        '# vmsync-init: begin 3 hello',
        '    hello from the guest',
        '# vmsync-init: end 3',
        'ok 3 hello', DONE),
    'failed_leaf': _log(
        REACHED, 'KTAP version 1', '1..1',
        '    TAP version 13', '    1..2',
        '    ok 1 mapper.identity',
        '    # mapper.c:42:data_alias:Expected 1 (1) == 2 (2)',
        '    not ok 2 mapper.data_alias',
        '# vmsync_test: exit status 1',
        'not ok 1 vmsync_test', DONE),
    'short_plan': _log(
        REACHED, 'KTAP version 1', '1..3',
        'ok 1 a', '    TAP version 13', '    1..3', '    ok 1 - x',
        '    ok 2 - y', 'ok 2 - b', DONE),
    'oops': _log(
        REACHED, 'KTAP version 1', '1..1',
        '[   12.000000] BUG: kernel NULL pointer dereference, address: 0',
        '[   12.000001] Oops: 0002 [#1] SMP',
        'ok 1 a', DONE),
    'inject': _log(
        REACHED, 'KTAP version 1', '1..1',
        '[    1.0] vmsync: fault injection on') + _ALLOC_REPORT + _log(
        '[    1.3] vmsync: fault injection off',
        '[    1.4] vmsync_test: page allocation failure: order:0, '
        'mode:0xcc0(GFP_KERNEL), nodemask=(null)',
        '[    1.5] Call Trace:',
        'ok 1 a', DONE),
    'rcu_stall': _log(
        REACHED, 'KTAP version 1', '1..1',
        '[    1.0] vmsync: fault injection on',
        '[    1.1] vmsync_test: page allocation failure: order:0, '
        'mode:0xcc0(GFP_KERNEL), nodemask=(null)',
        '[    1.2] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
        '[    1.2] Call Trace:',
        '[    1.3] vmsync: fault injection off',
        'ok 1 a', DONE),
    'nested': _log(
        REACHED, 'KTAP version 1', '1..2',
        '# vmsync-init: begin 1 vmsync_test',
        'KTAP version 1', '1..1',
        '    KTAP version 1', '    # Subtest: mapper', '    1..2',
        '    ok 1 identity',
        '    # data_alias: alias mismatch at 0x1000',
        '    not ok 2 data_alias',
        'not ok 1 mapper',
        '# vmsync-init: end 1',
        'ok 1 vmsync_test',
        '# vmsync-init: begin 2 deep',
        '    TAP version 13', '    1..1',
        '        KTAP version 1', '        1..2',
        '            TAP version 13', '            1..1',
        '            ok 1 leaf',
        '        ok 1 inner',
        '        ok 2 other # skip not today',
        '    ok 1 outer',
        '# vmsync-init: end 2',
        'ok 2 deep', DONE),
    'skip': _log(
        REACHED, 'KTAP version 1', '1..3',
        '    TAP version 13', '    1..1', '    ok 1 x # SKIP no device',
        'ok 1 sel # SKIP exit status 4 (KSFT_SKIP)',
        'not ok 2 two # skip unsupported',
        'ok 3 three', DONE),
    'no_init': _log('Linux version 6.12.0', 'Kernel panic - not syncing: x'),
    'no_done': _log(REACHED, 'KTAP version 1', '1..1', 'ok 1 a'),
    'parent_fail_only': _log(
        REACHED, 'KTAP version 1', '1..1',
        '    TAP version 13', '    1..1', '    ok 1 x',
        '# t: killed by signal 11', 'not ok 1 t', DONE),
    'kselftest': _log(
        REACHED, 'KTAP version 1', '1..2',
        '# vmsync-init: begin 1 ksft_no_probe',
        '    TAP version 13', '    1..1',
        '    # timeout set to 45',
        '    # selftests: vmsync: vmsync.sh',
        '    # TAP version 13',
        '    # 1..0 # SKIP no /dev/vmsync',
        '    ok 1 selftests: vmsync: vmsync.sh # SKIP',
        '# vmsync-init: end 1',
        'ok 1 ksft_no_probe',
        '# vmsync-init: begin 2 ksft',
        '    TAP version 13', '    1..1',
        'kselftest: Running tests in vmsync',
        '    # timeout set to 45',
        '    # selftests: vmsync: vmsync.sh',
        '    # TAP version 13', '    # 1..3',
        '    # ok 1 load (already loaded) # SKIP',
        '    #     TAP version 13', '    #     1..2',
        '    #     #  RUN           vmsync.info ...',
        'clocksource: Switched to clocksource tsc',
        '    #     ok 1 vmsync.info',
        '    #     # vmsync_test.c:42:bad_input:Expected 0 (0) == -22 (-22)',
        '    #     not ok 2 vmsync.bad_input',
        '    # not ok 2 vmsync_test (exit status 1)',
        '    # ok 3 unload # SKIP',
        '    not ok 1 selftests: vmsync: vmsync.sh # exit=1',
        '# vmsync-init: end 2',
        'ok 2 ksft', DONE),
    'kselftest_error': _log(
        REACHED, 'KTAP version 1', '1..1',
        '    TAP version 13', '    1..1',
        '    # selftests: vmsync: vmsync.sh',
        "    # ./vmsync.sh: line 11: can't open ktap_helpers.sh",
        '    not ok 1 selftests: vmsync: vmsync.sh # exit=2',
        'ok 1 ksft', DONE),
    'no_plan': _log(
        REACHED, 'KTAP version 1', '1..1',
        '    TAP version 13', '    ok 1 x', 'ok 1 t', DONE),
}


# The plan scripts/arch.sh writes for x86_64 (no filter, no report).
_PLAN_X86_64 = """shell kselftest_no_probe cd /kselftest && ./run_kselftest.sh
insmod probe_load /lib/modules/rust_vmsync_probe.ko
run vmsync_test /bin/vmsync_test
run test_vmalloc /bin/vmsync_test_vmalloc /lib/modules/test_vmalloc.ko x
shell kselftest cd /kselftest && ./run_kselftest.sh
rmmod probe_unload rust_vmsync_probe
run vmalloc_leftover /bin/vmsync_leftover
run vmalloc_leftover_control /bin/vmsync_leftover --control
"""


def _render(entries, steps, extra=None):
    """A console log of a run that reports @entries, as init, the harness,
    KUnit and the kselftest runner nest them; @extra maps a path to lines
    printed (at its depth) before its result."""
    extra = extra or {}
    tree = {}
    for e in entries:
        node = tree
        for part in e.path.split('/'):
            node = node.setdefault(part, {})
        node[None] = e

    def doc(node, prefix, depth, names):
        pad = ' ' * (4 * depth)
        out = [pad + 'KTAP version 1', pad + '1..%d' % len(names)]
        for k, name in enumerate(names, 1):
            sub = node[name]
            path = prefix + name
            out.extend(pad + x for x in extra.get(path, []))
            if not prefix:
                out.append('# vmsync-init: begin %d %s' % (k, name))
            kids = [n for n in sub if n is not None]
            if kids:
                out.extend(doc(sub, path + '/', depth + 1, kids))
            e = sub.get(None)
            skip = ' # SKIP %s' % e.reason if e and e.status == 'skip' else ''
            if not prefix:
                out.append('# vmsync-init: end %d' % k)
            out.append('%sok %d %s%s' % (pad, k, name, skip))
        return out

    kunit = tree.pop('kunit', {})
    # One doctest of the kernel crate besides vmsync's, for the wildcard.
    suite = kunit.get('rust_doctests_kernel', {})
    if suite.pop('*', None) is not None:
        suite['rust_doctest_kernel_alloc_kbox_rs_0'] = {}
    lines = ['Linux version 6.12.117 (vmsync)']
    lines += doc(kunit, 'kunit/', 0, list(kunit))
    lines += [REACHED] + doc(tree, '', 0, [s for s in steps if s in tree])
    lines.append(DONE)
    return '\n'.join(lines) + '\n'


def selftest_manifest():
    """Crafted runs checked against the real manifest: the realistic one
    passes, every other one must be rejected."""
    fails = []
    m = Manifest(MANIFEST)
    tests = []

    def run(name, text, plan=_PLAN_X86_64, flt=(), arch='x86_64'):
        ex = Expect(m, arch, plan, list(flt))
        _, s, leaves = judge(text, arch, ex)
        tests.append(name)
        return s['problems'], leaves

    ex = Expect(m, 'x86_64', _PLAN_X86_64, [])
    steps = read_plan(_PLAN_X86_64)[0]
    bar = {'vmsync_test/vmsync.info': [
               '    # info: sync_mask=0x8 pmd_size=0x200000 bar=0x800000 '
               'controls=1'],
           'vmsync_test/vmsync.bar_host_pattern': [
               '    # vmsync-bar-expect region=0x400000 size=0x400000 '
               'bar_off=0x403000 len=0x5000 range_off=0x2000 seed=0x5eed']}
    good = _render(ex.entries, steps, extra=bar)
    probs, leaves = run('realistic', good)
    if probs:
        fails.append('realistic x86_64 run: %s' % probs)
    # Its observed lines are the manifest's, in the same order.
    if ex.observed(leaves) != [e.line('x86_64') for e in ex.entries]:
        fails.append('observed != expected: %s' % ex.observed(leaves))

    def drop(path):
        return [e for e in ex.entries if e.path != path]

    def with_skip(path, reason):
        return [Entry(e.arches, e.path, 'skip', reason, 0)
                if e.path == path else e for e in ex.entries]

    crafted = {
        'empty plan (1..0)': (_render(ex.entries, [], extra=bar), ''),
        'one test removed': (_render(drop('vmsync_test/vmsync.bad_input'),
                                     steps, extra=bar), None),
        'one extra skip': (_render(with_skip('vmsync_test/vmsync.rmmod_busy',
                                             'not today'), steps, extra=bar),
                           None),
        'expected skip passes': (good.replace(
            'vmsync.flush_lazy_bit # SKIP no lazy vmalloc flush on this '
            'architecture', 'vmsync.flush_lazy_bit', 1), None),
        'skip for another reason': (good.replace(
            'no lazy vmalloc flush on this architecture', 'no idea', 1), None),
        'step prints nothing, exits 0': (_render(
            [e for e in ex.entries if not e.path.startswith('vmsync_test/')] +
            [Entry(None, 'vmsync_test', 'pass', '', 0)], steps, extra=bar),
            None),
        'no KUnit document': (good[good.index(REACHED):], None),
        'duplicated result number': (good.replace('ok 2 vmsync.info',
                                                  'ok 1 vmsync.info'), None),
        'step missing': (good, _PLAN_X86_64 + 'run extra /bin/extra\n'),
        'BAR claim failed': (_render(
            [Entry(e.arches, e.path, 'skip', 'no 8 MiB ivshmem BAR', 0)
             if e.test() in ('bar_mixed_data', 'bar_pmd_leaf',
                             'pmd_leaf_unmap_resync', 'bar_host_pattern')
             else e for e in ex.entries], steps, extra={
                'probe_load': ['rust_vmsync_probe: no ivshmem BAR (ENODEV): '
                               'BAR chunks unavailable']}), None),
    }
    skipped_whole = _render(
        [e for e in ex.entries if not e.path.startswith('vmsync_test/')] +
        [Entry(None, 'vmsync_test', 'skip', 'exit status 4 (KSFT_SKIP)', 0)],
        steps, extra=bar)
    crafted['vmsync_test skips as a whole'] = (skipped_whole, None)
    for name, (text, plan) in crafted.items():
        probs, _ = run(name, text, _PLAN_X86_64 if plan is None else plan)
        if not probs:
            fails.append('%s: not rejected' % name)
    # A filter that matches nothing, and one that names an unknown test.
    one = [e for e in ex.entries if e.test() in (None, 'info')]
    fplan = _PLAN_X86_64.replace('/bin/vmsync_test\n',
                                 '/bin/vmsync_test -t nosuch\n')
    probs, _ = run('filter names no test', _render(
        [e for e in one if e.test() is None], steps), fplan, ['nosuch'])
    if not any('names no test' in p for p in probs):
        fails.append('filter naming no test: not rejected: %s' % probs)
    fplan = _PLAN_X86_64.replace('/bin/vmsync_test\n',
                                 '/bin/vmsync_test -t info\n')
    probs, _ = run('filter selects nothing', _render(
        [e for e in one if e.test() is None], steps), fplan, ['info'])
    if not probs:
        fails.append('filter selecting nothing: not rejected')
    probs, _ = run('filter info', _render(one, steps, extra=bar), fplan,
                   ['info'])
    if probs:
        fails.append('filter -t info: %s' % probs)
    return fails, len(tests)


def selftest():
    fails = []

    def check(name, cond, what):
        if not cond:
            fails.append('%s: %s' % (name, what))

    res = {}
    for name, text in _SAMPLES.items():
        out, s, _ = judge(text, 'test')
        res[name] = (out, s)

    def has(name, pattern):
        return any(re.search(pattern, p) for p in res[name][1]['problems'])

    def counts(name):
        s = res[name][1]
        return (s['passed'], s['failed'], s['skipped'])

    check('pass', res['pass'][1]['problems'] == [], res['pass'][1]['problems'])
    # kunit: a, param-0, param-1, c(skip); init: probe, 2 harness, hello
    check('pass', counts('pass') == (7, 0, 1), counts('pass'))
    check('pass', res['pass'][0][-1] == 'test: 7 passed, 0 failed, 1 skipped',
          res['pass'][0][-1])
    check('failed_leaf', counts('failed_leaf') == (1, 1, 0),
          counts('failed_leaf'))
    check('failed_leaf', has('failed_leaf', r'^failed: vmsync_test/mapper\.data_alias$'),
          'failed path')
    leaf = [l for l in res['failed_leaf'][1]['leaves'] if l['result'] == 'fail']
    check('failed_leaf', leaf and leaf[0]['diag'] ==
          ['# mapper.c:42:data_alias:Expected 1 (1) == 2 (2)'], leaf)
    check('short_plan', has('short_plan', r'^init: plan 1\.\.3 but 2'),
          'top short plan')
    check('short_plan', has('short_plan', r'^b: plan 1\.\.3 but 2'),
          'nested short plan')
    check('short_plan', counts('short_plan') == (3, 0, 0), counts('short_plan'))
    check('short_plan', any(re.match(r'^  FAIL  b \(2 passed', l)
                            for l in res['short_plan'][0]), 'b shown as FAIL')
    check('oops', has('oops', r'kernel trouble at line \d+: BUG:'), 'BUG')
    check('oops', has('oops', r'kernel trouble at line \d+: Oops'), 'Oops')
    trouble = [p for p in res['inject'][1]['problems'] if 'kernel trouble' in p]
    check('inject', len(trouble) == 2 and 'line 31: rcu: INFO' in trouble[0]
          and 'line 34: Call Trace:' in trouble[1],
          'only the stall and the allocation failure outside the sweep '
          'count: %s' % trouble)
    check('rcu_stall', len([p for p in res['rcu_stall'][1]['problems']
                            if 'kernel trouble' in p]) == 2,
          'a stall inside a report: %s' % res['rcu_stall'][1]['problems'])
    check('nested', counts('nested') == (2, 1, 1), counts('nested'))
    check('nested', has('nested', r'^failed: vmsync_test/mapper/data_alias$'),
          res['nested'][1]['problems'])
    check('nested', has('nested', r'^vmsync_test: reported ok but 1'),
          'ok parent over failed leaf')
    check('nested', any(l['path'] == 'deep/outer/inner/leaf'
                        for l in res['nested'][1]['leaves']), 'deep path')
    check('nested', len(res['nested'][1]['problems']) == 2,
          res['nested'][1]['problems'])
    check('skip', counts('skip') == (1, 0, 2), counts('skip'))
    check('skip', res['skip'][1]['problems'] == [], res['skip'][1]['problems'])
    check('no_init', res['no_init'][1]['problems'][0] ==
          'boot never reached init', res['no_init'][1]['problems'])
    check('no_init', has('no_init', 'Kernel panic'), 'panic')
    check('no_done', has('no_done', 'vmsync-init: done'), 'done')
    check('no_done', len(res['no_done'][1]['problems']) == 1,
          res['no_done'][1]['problems'])
    check('parent_fail_only', counts('parent_fail_only') == (1, 1, 0),
          counts('parent_fail_only'))
    check('parent_fail_only', has('parent_fail_only', '^failed: t$'), 'parent')
    check('parent_fail_only',
          any('# t: killed by signal 11' in l for l in res['parent_fail_only'][0]),
          'parent diag shown')
    check('no_plan', has('no_plan', r'^t: document without a plan'),
          'no plan')
    # kselftest runner: "# "-prefixed output nests under the runner's result.
    ks = res['kselftest'][1]
    check('kselftest', counts('kselftest') == (1, 1, 3), counts('kselftest'))
    check('kselftest', any(l['path'] == 'ksft_no_probe/selftests: vmsync: '
                           'vmsync.sh' and l['result'] == 'skip'
                           for l in ks['leaves']), ks['leaves'])
    bad = 'ksft/selftests: vmsync: vmsync.sh/vmsync_test (exit status 1)/' \
          'vmsync.bad_input'
    check('kselftest', has('kselftest', '^failed: ' + re.escape(bad) + '$'),
          ks['problems'])
    check('kselftest', has('kselftest', r'^ksft: reported ok but 1 '),
          'runner exit 0 over a failed test')
    check('kselftest', len(ks['problems']) == 2, ks['problems'])
    leaf = [l for l in ks['leaves'] if l['result'] == 'fail']
    check('kselftest', leaf and leaf[0]['diag'] ==
          ['# vmsync_test.c:42:bad_input:Expected 0 (0) == -22 (-22)'], leaf)
    ke = res['kselftest_error'][1]
    check('kselftest_error', counts('kselftest_error') == (0, 1, 0),
          counts('kselftest_error'))
    leaf = [l for l in ke['leaves'] if l['result'] == 'fail']
    check('kselftest_error', leaf and
          "# ./vmsync.sh: line 11: can't open ktap_helpers.sh" in leaf[0]['diag'],
          leaf)

    mfails, ncases = selftest_manifest()
    fails.extend(mfails)
    for f in fails:
        print('selftest FAILED: %s' % f)
    if fails:
        for name, (out, s) in res.items():
            print('---- %s' % name)
            print('\n'.join(out))
        return 1
    print('selftest: %d samples and %d runs against the manifest ok'
          % (len(_SAMPLES), ncases))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--arch', help='architecture name for the report')
    ap.add_argument('--json', metavar='OUT.json', help='write a JSON summary')
    ap.add_argument('--manifest', default=MANIFEST,
                    help='expected results (default: %(default)s)')
    ap.add_argument('--plan', help="init's plan (default: plan next to "
                    'CONSOLE_LOG)')
    ap.add_argument('--tests', default='', metavar='"NAME..."',
                    help='the selftest filter the plan was written with')
    ap.add_argument('--observed', action='store_true',
                    help="print what CONSOLE_LOG reported, as manifest lines")
    ap.add_argument('--expected', action='store_true',
                    help='print what the manifest expects, as manifest lines')
    ap.add_argument('--selftest', action='store_true',
                    help='run the built-in samples and exit')
    ap.add_argument('log', nargs='?', metavar='CONSOLE_LOG')
    args = ap.parse_args()

    if args.selftest:
        return selftest()
    if not args.arch or not (args.log or args.expected):
        ap.error('--arch ARCH and CONSOLE_LOG are required')
    plan = args.plan
    if plan is None and args.log:
        plan = os.path.join(os.path.dirname(args.log), 'plan')
    try:
        manifest = Manifest(args.manifest)
        plan_text = ''
        if plan is not None or not args.expected:
            with open(plan) as f:
                plan_text = f.read()
        expect = Expect(manifest, args.arch, plan_text, args.tests.split())
        if args.expected:
            if plan is None:
                expect.entries = expect.all
            print('\n'.join(e.line(args.arch) for e in expect.entries))
            return 0
        with open(args.log, 'rb') as f:
            text = f.read().decode('utf-8', errors='replace')
    except (OSError, ManifestError) as e:
        print('ktap.py: %s' % e, file=sys.stderr)
        return 2

    out, summary, leaves = judge(text, args.arch, expect)
    if args.observed:
        print('\n'.join(expect.observed(leaves)))
        return 0
    print('\n'.join(out))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=1)
            f.write('\n')
    return 1 if summary['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
