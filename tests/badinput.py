"""The one check every bad-input case makes: exit code 2, the culprit named, no traceback, and
nothing written or changed under the watched folders. A new case is one row in a table that
calls `refuses`."""
import hashlib
import os


def snapshot(*roots):
    """{path: sha1} of every file under the roots (a missing root is an empty snapshot)."""
    out = {}
    for root in roots:
        if os.path.isfile(root):
            out[root] = hashlib.sha1(open(root, "rb").read()).hexdigest()
        for d, _, files in os.walk(root):
            for f in files:
                p = os.path.join(d, f)
                if os.path.isfile(p):
                    out[p] = hashlib.sha1(open(p, "rb").read()).hexdigest()
    return out


def refuses(main, argv, culprit, capsys, watch=()):
    """Runs an entry point's main(argv) in this process and asserts the bad-input contract.
    argparse's own refusals (SystemExit 2) count too. Returns the error text."""
    before = snapshot(*watch)
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    assert rc == 2, f"exit {rc}, expected 2\nstdout: {out[-800:]}\nstderr: {err[-800:]}"
    assert "Traceback" not in err and "Traceback" not in out, err[-2000:]
    assert str(culprit) in err, f"the message does not name {culprit!r}: {err[-800:]}"
    assert snapshot(*watch) == before, "a refused run wrote or changed files"
    return err
