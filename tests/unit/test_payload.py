"""Job payloads keep the user's file names and source lines in tracebacks,
whatever file name the installed cloudpickle gives rebuilt code objects."""

import subprocess
import sys
import textwrap

from stackyard.compute.payload import dumps

_LOADER = textwrap.dedent("""
    import pickle, sys, traceback
    f = pickle.loads(sys.stdin.buffer.read())
    try:
        f("x")
    except ValueError:
        print(traceback.format_exc())
""")


def test_a_traceback_names_the_users_file_and_line_where_the_file_is_gone(tmp_path):
    src = tmp_path / "userjob.py"
    src.write_text("def helper():\n    def parse(x):\n        return int(x)  # the user's line\n"
                   "    return parse\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import userjob
        payload = dumps(userjob.helper())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("userjob", None)
    src.unlink()                          # the worker's machine does not have it
    out = subprocess.run([sys.executable, "-c", _LOADER], input=payload,
                         capture_output=True, check=True).stdout.decode()
    assert f'File "{src}", line 3, in parse' in out
    assert "return int(x)  # the user's line" in out
    assert "<dynamic-code>" not in out


def test_nested_code_keeps_its_file_name():
    def outer():
        return [lambda v: v for _ in range(1)][0]
    import pickle
    f = pickle.loads(dumps(outer))
    assert f.__code__.co_filename == __file__
    assert all(c.co_filename == __file__ for c in f.__code__.co_consts if hasattr(c, "co_filename"))
