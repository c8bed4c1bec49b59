"""What the build's generators of C sources share (scripts/gen-openapi-c.py,
scripts/gen-board-c.py): bytes as a C array, and writing a file whole."""
import os


def c_bytes(decl, data):
    """Lines of a C definition `decl = {...};` holding data and a final 0
    (so it also reads as a C string)."""
    out = [decl + " = {"]
    for i in range(0, len(data), 24):
        out.append("    " + ",".join(str(b) for b in data[i:i + 24]) + ",")
    out.append("    0};")
    return out


def write_whole(path, lines):
    """Writes lines to path through a temporary file, so that an interrupted
    build never leaves half a source behind."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
