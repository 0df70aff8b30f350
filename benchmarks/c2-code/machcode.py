#!/usr/bin/env python3
"""Disassembles the C2 code HotSpot prints as raw bytes when it has no hsdis plugin.

JDK 25 wants hsdis's decode_instructions_virtual; Debian's libhsdis0-fcml has only the older decode_instructions, so
-XX:+PrintAssembly prints each method's [MachCode] as hex. This turns one such dump back into instructions with
objdump (Intel syntax) and keeps HotSpot's ';' comments (calls, polls, oops) at their addresses.

    machcode.py VM-LOG [NTH] [NAME-PART]   NTH: which matching dump, default -1 (the last: the final compile)
"""
import os
import re
import subprocess
import sys
import tempfile

text = open(sys.argv[1], errors='replace').read().splitlines()
nth = int(sys.argv[2]) if len(sys.argv) > 2 else -1
part = sys.argv[3] if len(sys.argv) > 3 else None

dumps, cur, name = [], None, None
for line in text:
    if line.startswith('Compiled method'):
        name = line
    if line.startswith('[MachCode]'):
        cur = (name, [])
        dumps.append(cur)
        continue
    if cur is not None:
        if line.startswith('[/MachCode]'):
            cur = None
        else:
            cur[1].append(line)
if part:
    dumps = [d for d in dumps if d[0] and part in d[0]]
if not dumps:
    sys.exit('no [MachCode] dump' + (' of ' + part if part else '') + ' in ' + sys.argv[1])
name, lines = dumps[nth]
print(name)

data, comments, last = {}, {}, None
for line in lines:
    m = re.match(r'\s+0x([0-9a-f]+): (.*)$', line)
    if not m:
        if line.strip().startswith(';') and last is not None:
            comments.setdefault(last, []).append(line.strip())
        continue
    addr, rest = int(m.group(1), 16), m.group(2)
    last = addr
    if rest.startswith(';'):
        comments.setdefault(addr, []).append(rest.strip())
        continue
    for i, b in enumerate(bytes.fromhex(''.join(rest.replace('|', ' ').split()))):
        data[addr + i] = b

lo, hi = min(data), max(data) + 1
with tempfile.NamedTemporaryFile(delete=False) as f:
    f.write(bytes(data.get(a, 0x90) for a in range(lo, hi)))
try:
    out = subprocess.run(['objdump', '-D', '-b', 'binary', '-mi386:x86-64', '-Mintel', '--adjust-vma=%#x' % lo, f.name],
                         capture_output=True, text=True, check=True).stdout
finally:
    os.unlink(f.name)
for line in out.splitlines():
    m = re.match(r'\s*([0-9a-f]+):\t', line)
    if m:
        for c in comments.pop(int(m.group(1), 16), []):
            print('        ' + c)
        print(line)
