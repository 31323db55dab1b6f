"""Files that every layer writes or reads: atomic writes, JSON records, metrics rows."""
import json
import os
import shutil
import tempfile

from ssdgm import UserError


def atomic_write(path, write):
    """write(tmp_path) then rename over path, so a kill at any moment leaves old or new, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared weights unreadable to others
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable(folder, flag=None):
    """Creates folder if needed and proves a file can be written there; UserError otherwise, naming
    the flag (if given) that chooses another folder."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UserError(f"{folder}: cannot write here ({e.strerror or e})" + (f"; choose another with {flag}" if flag else ""))


def copy_atomic(source, path):
    atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
    atomic_write(path, write)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: missing")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})")


def metrics_path(stem):
    """Where the metrics rows of the weights <stem>.npz are kept: <stem>.metrics.jsonl."""
    return stem + ".metrics.jsonl"


def read_jsonl(path):
    """The rows of a JSON-lines file (one object a line); UserError if missing or corrupt."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: missing")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})")


def write_jsonl(path, rows):
    """Writes rows (dicts) as JSON lines, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
    atomic_write(path, write)
