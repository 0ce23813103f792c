"""Reading a secret file: refused when group or others may access it, as ssh does for keys.

Every file that holds a secret goes through `read_secret_file` (the pseudonym key file of
`GATEWAY_KEYS_FILE`, SASL password and key passphrase files) or `check_secret_file` (a TLS
client's private key, which the `ssl` module reads itself). Like OpenSSH's check of private key
files, any permission bit for group or others (`mode & 0o077`) is refused: a secret another
account could read is no longer a secret. Reading files is I/O; these two functions are the
only ones in `gateway/` that do it, besides loading the config folder.
"""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.errors import GatewayError

GROUP_OR_OTHERS = 0o077


class SecretFileError(GatewayError):
    """A secret file is missing, unreadable or open to group or others; the message says which.

    The message names the file and the problem, never its content.
    """


def check_secret_file(path: Path) -> None:
    """Raise `SecretFileError` unless `path` is a regular file only its owner may access.

    Symbolic links are followed (Kubernetes mounts secrets as links), so the mode checked is
    the target's.
    """
    try:
        info = path.stat()
    except OSError as error:
        raise SecretFileError(
            f"{path}: cannot read secret file ({error.strerror or type(error).__name__})"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"{path}: the secret file is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & GROUP_OR_OTHERS:
        raise SecretFileError(
            f"{path}: the secret file is accessible by group or others (mode {mode:04o}); "
            f"make it owner-only: chmod 600 {path}"
        )


def read_secret_file(path: Path) -> bytes:
    """The bytes of a secret file after `check_secret_file`; `SecretFileError` otherwise."""
    check_secret_file(path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise SecretFileError(
            f"{path}: cannot read secret file ({error.strerror or type(error).__name__})"
        ) from None
