#!/usr/bin/env python3
"""Counts the instructions, loads and stores of a C2 loop's likely path, in machcode.py's output.

C2 lays out a loop's likely blocks in a line and moves the unlikely ones (uncommon traps, slow paths) after them, so
the path one iteration takes is found by falling through forward conditional branches and following backward ones
and unconditional jumps, from a start until an address comes round again. A branch taken once per batch (not per
item) that jumps backward is followed too: the count can be off by a few instructions, the same way for every build.

    hotpath.py DIS [POLL]            start at the POLLth safepoint poll (default 0): a loop's back edge
    hotpath.py DIS -1 REGEX          start at the first instruction matching REGEX (e.g. 'cmp\\s+r\\w+,0x40$'; a
                                     method's entry: 'mov\\s+DWORD PTR \\[rsp-0x14000\\]', to its first ret)
    add a third/fourth argument 'list' to print the path
"""
import re
import sys

ins = []
for line in open(sys.argv[1]).read().splitlines():
    m = re.match(r'\s*([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\t(.*)$', line)
    if m:
        ins.append((int(m.group(1), 16), m.group(2).strip()))
index = {a: i for i, (a, _) in enumerate(ins)}
polls = [i for i, (_, t) in enumerate(ins) if re.match(r'test\s+DWORD PTR \[r\w+\],eax', t)]
which = int(sys.argv[2]) if len(sys.argv) > 2 else 0
if which >= 0:
    i = polls[which]
else:
    i = next(k for k, (_, t) in enumerate(ins) if re.match(sys.argv[3], t))
seen, path, loads, stores = set(), [], 0, 0
while ins[i][0] not in seen:
    a, t = ins[i]
    seen.add(a)
    path.append((a, t))
    op = t.split()[0]
    if op == 'ret':
        break                                                         # a method's path (started at its entry) ends here
    if 'PTR [' in t and op not in ('lea', 'nop'):
        if re.match(r'\w+\s+(BYTE|WORD|DWORD|QWORD) PTR', t):       # memory is the first operand
            if op in ('add', 'sub', 'inc', 'dec', 'or', 'and', 'xor'):
                loads += 1                                            # read-modify-write
            if op not in ('cmp', 'test'):
                stores += 1
            else:
                loads += 1
        else:
            loads += 1
    m = re.match(r'(j\w+)\s+0x([0-9a-f]+)', t)
    if m:
        target = int(m.group(2), 16)
        if (m.group(1) == 'jmp' or target < a) and target in index:
            i = index[target]
            continue
    i += 1
    if i >= len(ins):
        break
print(f"{len(path)} instructions, {loads} loads, {stores} stores (from {path[0][0]:x})")
if 'list' in sys.argv[3:]:
    for a, t in path:
        print(f"  {a:x}: {t}")
