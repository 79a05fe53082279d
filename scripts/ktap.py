#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a vmsync console log: parse its KTAP output and decide pass/fail.

Usage: ktap.py --arch ARCH CONSOLE_LOG [--json OUT.json]
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
leaf); a plan that does not match the number of results; a document
without a plan (except KUnit parameterised subtests, which have none);
kernel trouble (oops, BUG, WARNING, ...) anywhere in the log; a missing
"vmsync-init: done" line.

Exit status 0 if the log passes, 1 if not, 2 on usage errors.
--json writes {"arch", "passed", "failed", "skipped", "problems": [str],
"leaves": [{"path", "result": "pass"|"fail"|"skip", "diag": [str]}]}.
"""

import argparse
import json
import re
import sys

REACHED = 'vmsync-init: reached init'
DONE = 'vmsync-init: done'
MARKER_RE = re.compile(r'^# vmsync-init: (begin|end) (\d+)(?: (.*))?$')

TIMESTAMP_RE = re.compile(r'^\[\s*\d+\.\d+\] ')
VERSION_RE = re.compile(r'^(?:KTAP|TAP) version \d+\s*$')
PLAN_RE = re.compile(r'^1\.\.(\d+)\s*(?:#.*)?$')
RESULT_RE = re.compile(r'^(not ok|ok)(?=\s|$)(?:\s+(\d+))?(?:\s+-(?=\s|$))?\s*(.*)$')
SUBTEST_RE = re.compile(r'^#\s*Subtest:\s*(.*?)\s*$')
SKIP_RE = re.compile(r'^\s*(skip|todo)\b', re.IGNORECASE)
KSFT_HDR_RE = re.compile(r'^# selftests: \S+: \S+\s*$')
TROUBLE_RE = re.compile(
    r'(Oops|BUG:|WARNING:|Kernel panic|general protection fault|'
    r'Unable to handle kernel|kernel BUG|Call Trace:|UBSAN:|KASAN:|'
    r'kmemleak: [0-9]+ new suspected memory leaks|possible circular locking|INFO: task .* blocked)')
# The selftests write these to /dev/kmsg around fault-injection sweeps.  In
# between, the stack dump of a page allocation failure report is expected
# (one "Call Trace:" per report); everything else still counts.
INJECT_ON = 'vmsync: fault injection on'
INJECT_OFF = 'vmsync: fault injection off'
ALLOC_FAIL_RE = re.compile(r'page allocation failure: order:')


def trouble_lines(lines):
    """Lines reporting kernel trouble, less expected allocation failures."""
    out = []
    injecting = False
    excused = 0
    for n, l in lines:
        if INJECT_ON in l:
            injecting = True
        elif INJECT_OFF in l:
            injecting = False
        if injecting and ALLOC_FAIL_RE.search(l):
            excused = 1
        m = TROUBLE_RE.search(l)
        if not m:
            continue
        if excused and m.group(0) == 'Call Trace:':
            excused = 0
            continue
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


class Doc:
    def __init__(self, indent, lineno, parent=None, embedded=False):
        self.indent = indent
        self.lineno = lineno
        self.parent = parent
        self.embedded = embedded
        self.name = None
        self.version = False
        self.plan = None
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
        return 'plan', int(m.group(1))
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
            top.plan = data
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
        self.leaves = []        # (path, status, diag)
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
            self.leaves.append((path, status, clean_diag(r.diag)))
            return
        before = self.nfailed()
        for d in r.subdocs:
            self.walk_doc(d, path)
        failed = self.nfailed() - before
        if status == 'pass' and failed:
            self.problems.append('%s: reported ok but %d subtest(s) failed'
                                 % (path, failed))
        if status == 'fail' and not failed:
            self.leaves.append((path, 'fail', clean_diag(r.diag)))

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


def judge(text, arch):
    """Returns (report lines, summary dict)."""
    lines = read_lines(text)
    out = []
    j = Judge()
    tops = []       # (name, [leaves], own status, diag)

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

    for path, status, _ in j.leaves:
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
        for path, status, ldiag in leaves:
            if status != 'fail':
                continue
            out.append('          %s' % path)
            out.extend('            %s' % d for d in ldiag)
        if word == 'FAIL' and diag and not any(
                p == name for p, s, _ in leaves if s == 'fail'):
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
                   for p, s, d in j.leaves],
    }
    return out, summary


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
        '[    1.0] vmsync: fault injection on',
        '[    1.1] vmsync_test: page allocation failure: order:0, mode:0xcc0',
        '[    1.2] Call Trace:',
        '[    1.3] vmsync: fault injection off',
        '[    1.4] vmsync_test: page allocation failure: order:0, mode:0xcc0',
        '[    1.5] Call Trace:',
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


def selftest():
    fails = []

    def check(name, cond, what):
        if not cond:
            fails.append('%s: %s' % (name, what))

    res = {}
    for name, text in _SAMPLES.items():
        out, s = judge(text, 'test')
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
    check('inject', len(trouble) == 1 and 'line 9:' in trouble[0],
          'only the allocation failure outside the sweep counts: %s' % trouble)
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

    for f in fails:
        print('selftest FAILED: %s' % f)
    if fails:
        for name, (out, s) in res.items():
            print('---- %s' % name)
            print('\n'.join(out))
        return 1
    print('selftest: %d samples ok' % len(_SAMPLES))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--arch', help='architecture name for the report')
    ap.add_argument('--json', metavar='OUT.json', help='write a JSON summary')
    ap.add_argument('--selftest', action='store_true',
                    help='run the built-in samples and exit')
    ap.add_argument('log', nargs='?', metavar='CONSOLE_LOG')
    args = ap.parse_args()

    if args.selftest:
        return selftest()
    if not args.log or not args.arch:
        ap.error('--arch ARCH and CONSOLE_LOG are required')
    try:
        with open(args.log, 'rb') as f:
            text = f.read().decode('utf-8', errors='replace')
    except OSError as e:
        print('ktap.py: %s' % e, file=sys.stderr)
        return 2

    out, summary = judge(text, args.arch)
    print('\n'.join(out))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=1)
            f.write('\n')
    return 1 if summary['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
