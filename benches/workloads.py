#!/usr/bin/env python3
"""Make the benchmark's source trees from real files on this machine.

W1: ~200 MB, 60% ELF binaries and libraries, 40% text, from /usr.
W2: 20,000 files of 4 KiB, cut from real text and binaries.
W4: a 1 GiB tree: W1's files copied five times over.
W6: base trees: ~60 MB in ~10,000 files of every kind from /usr, with this
    machine's /etc/passwd, /etc/group and /etc/skel; and ~600 MB: the same
    files ten times over (the benchmark builds each into an OCI layout).
Usage: workloads.py OUT_DIR
"""
import os
import shutil
import sys

MB = 1 << 20


def files(roots, want_elf):
    for root in roots:
        for dirpath, dirnames, names in os.walk(root):
            dirnames.sort()
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    size = os.path.getsize(path)
                    with open(path, "rb") as f:
                        head = f.read(512)
                except OSError:
                    continue
                if not 0 < size <= 8 * MB:
                    continue
                is_elf = head.startswith(b"\x7fELF")
                is_text = not is_elf and b"\0" not in head
                if (want_elf and is_elf) or (not want_elf and is_text):
                    yield path, size


def fill(dest, roots, want_elf, budget):
    total = 0
    for path, size in files(roots, want_elf):
        if total + size > budget:
            continue
        target = os.path.join(dest, os.path.relpath(path, "/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
        total += size
        if total > budget - 64 * 1024:
            break
    return total


def w1(out):
    dist = os.path.join(out, "w1", "dist")
    if os.path.isdir(dist):
        return dist
    elf = fill(os.path.join(dist, "bin"), ["/usr/lib", "/usr/bin", "/usr/libexec", "/usr/sbin"], True, 120 * MB)
    text = fill(os.path.join(dist, "text"), ["/usr/share", "/usr/include", "/usr/lib/python3"], False, 80 * MB)
    print(f"W1: {elf / MB:.0f} MB ELF + {text / MB:.0f} MB text", file=sys.stderr)
    return dist


def w2(out):
    dist = os.path.join(out, "w2", "dist")
    if os.path.isdir(dist):
        return
    made = 0
    sources = [p for p, _ in files(["/usr/share/doc", "/usr/lib"], False)] + [p for p, _ in files(["/usr/bin"], True)]
    for path in sources:
        with open(path, "rb") as f:
            data = f.read()
        for off in range(0, len(data) - 4096 + 1, 4096):
            d = os.path.join(dist, f"d{made // 500:03d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{made:05d}"), "wb") as f:
                f.write(data[off:off + 4096])
            made += 1
            if made == 20000:
                print("W2: 20000 files of 4 KiB", file=sys.stderr)
                return
    sys.exit("not enough real files on this machine for W2")


def w4(out, w1_dist):
    dist = os.path.join(out, "w4", "dist")
    if os.path.isdir(dist):
        return
    for i in range(5):
        shutil.copytree(w1_dist, os.path.join(dist, f"copy{i}"))
    print("W4: W1 five times (about 1 GiB)", file=sys.stderr)


def base_files():
    for root in ["/usr/lib", "/usr/share", "/usr/bin", "/usr/include"]:
        for dirpath, dirnames, names in os.walk(root):
            dirnames.sort()
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                if not os.path.islink(path) and os.path.isfile(path):
                    yield path


def w6(out):
    small = os.path.join(out, "w6", "base-60")
    big = os.path.join(out, "w6", "base-600")
    if os.path.isdir(big):
        return
    count = total = 0
    # Many small files first, then larger ones up to the size: a Debian base's mix.
    for cap, files_max in [(16 << 10, 9000), (1 * MB, 10000)]:
        for path in base_files():
            size = os.path.getsize(path)
            target = os.path.join(small, os.path.relpath(path, "/"))
            if size > cap or total + size > 60 * MB or os.path.exists(target):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                shutil.copyfile(path, target)
            except OSError:
                continue
            count += 1
            total += size
            if count >= files_max:
                break
    etc = os.path.join(small, "etc")
    os.makedirs(etc, exist_ok=True)
    for name in ["passwd", "group"]:
        shutil.copyfile(os.path.join("/etc", name), os.path.join(etc, name))
    if os.path.isdir("/etc/skel"):
        shutil.copytree("/etc/skel", os.path.join(etc, "skel"), symlinks=True)
    print(f"W6: base of {count} files, {total / MB:.0f} MB", file=sys.stderr)
    os.makedirs(big)
    shutil.copytree(etc, os.path.join(big, "etc"), symlinks=True)
    for i in range(10):
        shutil.copytree(os.path.join(small, "usr"), os.path.join(big, f"usr/copy{i}"))
    print(f"W6: base of {10 * count} files, {10 * total / MB:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    out = sys.argv[1]
    w1_dist = w1(out)
    w2(out)
    w4(out, w1_dist)
    w6(out)
