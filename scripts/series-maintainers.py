#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Regenerate the MAINTAINERS hunk of every series/ patch that adds files.

Each step edits MAINTAINERS as it stands after the previous patches; the
resulting diff replaces the MAINTAINERS part of that patch's edit.patch.
The M: line is the token @VMSYNC_MAINTAINER@, which tree.sh replaces with
VMSYNC_MAINTAINER or the git identity (README.md, "Sign-off")."""
import difflib, re, os
K=os.path.join(os.environ.get('VMSYNC_CACHE') or os.path.expanduser('~/.cache/vmsync'), 'src/linux-6.12')

import subprocess
base=subprocess.run(['git','-C',K,'show','vmsync-base:MAINTAINERS'],capture_output=True,text=True).stdout
S=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'series') + '/'
entry_anchor="""F:	rust/kernel/alloc.rs
F:	rust/kernel/alloc/

"""
steps=[
 ('0001-rust-helpers-add-kernel-page-table-helpers', lambda s: s.replace(entry_anchor, entry_anchor+"""RUST [VMSYNC]
M:	@VMSYNC_MAINTAINER@
L:	rust-for-linux@vger.kernel.org
L:	linux-mm@kvack.org
S:	Maintained
F:	rust/helpers/vmsync.c

""",1)),
 ('0002-rust-miscdevice-add-misc-device-abstraction', lambda s: s.replace("F:	include/linux/miscdevice.h\n","F:	include/linux/miscdevice.h\nF:	rust/kernel/miscdevice.rs\n",1)),
 ('0003-rust-mm-add-vmsync', lambda s: s.replace("F:	rust/helpers/vmsync.c\n","F:	rust/helpers/vmsync.c\nF:	rust/kernel/vmsync.kunitconfig\nF:	rust/kernel/vmsync.rs\nF:	rust/kernel/vmsync/\n",1)),
 ('0004-x86-rust-support-32-bit', lambda s: s.replace("F:	Documentation/rust/\nF:	rust/\n","F:	Documentation/rust/\nF:	arch/x86/lib/rust_divdi3_32.c\nF:	rust/\n",1)),
 ('0005-samples-rust-add-vmsync-probe', lambda s: s.replace("F:	rust/kernel/vmsync/\n","F:	rust/kernel/vmsync/\nF:	samples/rust/rust_vmsync_probe*\n",1)),
 ('0006-selftests-vmsync-add-tests', lambda s: s.replace("F:	samples/rust/rust_vmsync_probe*\n","F:	samples/rust/rust_vmsync_probe*\nF:	tools/testing/selftests/vmsync/\n",1)),
 ('0007-documentation-core-api-vmsync', lambda s: s.replace("S:	Maintained\nF:	rust/helpers/vmsync.c\n","S:	Maintained\nF:	Documentation/core-api/vmsync.rst\nF:	rust/helpers/vmsync.c\n",1)),
]
cur=base
for d,fn in steps:
    new=fn(cur)
    assert new!=cur, d
    diff=''.join(difflib.unified_diff(cur.splitlines(True), new.splitlines(True), 'a/MAINTAINERS','b/MAINTAINERS', n=3))
    block='diff -ru a/MAINTAINERS b/MAINTAINERS\n'+diff
    p=S+d+'/edit.patch'
    old=open(p).read() if os.path.exists(p) else ''
    old=re.sub(r'diff -ru a/MAINTAINERS b/MAINTAINERS\n.*?(?=^diff -ru |\Z)', '', old, flags=re.S|re.M)
    open(p,'w').write(block+old)
    cur=new
print('ok')
