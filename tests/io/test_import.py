"""medfeat.io stays light to import (its examples run with pytest's --doctest-modules)."""

def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, medfeat.io; print([m for m in ('pydicom', 'scipy', 'PIL', 'skimage', "
            "'tifffile', 'imageio', 'tqdm', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
