#!/usr/bin/python3
"""Self cost per function in a callgrind dump, minus a second dump.

    bench/cgtop.py SCENARIO.out BARE.out REQUESTS [TOP]

Prints instructions per request by function for the scenario's dump
minus the bare dump of the same nginx (bench/callgrind.sh writes both):
what the module adds to a request, function by function.
"""

import collections
import re
import sys

NAME = re.compile(r'\((\d+)\)(?: (.*))?')


def self_cost(path):
    names = {}
    cost = collections.Counter()
    fn = None
    call = False

    def name(s):
        m = NAME.match(s)
        if not m:
            return s
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), s)

    with open(path) as f:
        for line in f:
            if line.startswith('fn='):
                fn = name(line[3:].rstrip('\n'))
            elif line.startswith('cfn='):
                name(line[4:].rstrip('\n'))
            elif line.startswith('calls='):
                call = True
            elif line[:1].isdigit() or line[:1] in '+-*':
                if call:            # the inclusive cost of a call
                    call = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and fn:
                    cost[fn] += int(parts[1])
    return cost


def main():
    scen, bare, n = self_cost(sys.argv[1]), self_cost(sys.argv[2]), \
        int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    delta = {k: scen[k] - bare.get(k, 0) for k in set(scen) | set(bare)}
    for k, v in sorted(delta.items(), key=lambda x: -x[1])[:top]:
        print('%8.0f  %s' % (v / n, k))


if __name__ == '__main__':
    main()
