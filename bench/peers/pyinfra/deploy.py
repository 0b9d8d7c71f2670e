"""The guide's "Configuring repository servers", as `ccrun repo-node` does it (Runbooks/RepoNode.swift).

NFS client, three fstab lines mounted, the C++ runtime ccr loads, the ccr user (uid 930), /etc/ccr,
the ccr binary, /etc/ccr/ccr.conf (0600, ccr:ccr), the sysv init script, ccr restarted when its
binary or configuration changed, started (answering on 3030) and enabled at boot.

Run: pyinfra -y inventory.py deploy.py [--dry]
Deployment values come from the inventory's data (see inventory.py.template); the cc_rw password
is read from the file named by `ccr_rw_password_file`, never passed on a command line.
The restart keeps ccrun's record of the files ccr was started with
(/var/lib/ccrun/stamps/ccr.sha256, `sha256sum` format), so the three tools agree on the state.
"""
import io
import re
from pathlib import Path

from pyinfra import host
from pyinfra.facts.files import FindFiles
from pyinfra.operations import apt, files, server

TUNER_PORT = 3030
CCR_UID = 930
NFS_MOUNTS = [
    ("/srv/web", "rw,noac,noacl,nocto,nodiratime"),
    ("/srv/logs", "rw,noac,noacl,nocto,nodiratime"),
    ("/srv/archive", "rw,async,noacl,nocto,nodiratime"),
]

data = host.data
password = Path(data.ccr_rw_password_file).read_text().strip()
tuner_password = Path(data.ccr_tuner_password_file).read_text().strip()
config = (
    f"# ccr serve (written by ccrun): tuners on {TUNER_PORT}, recordings on the NFS volume\n"
    "[server]\n"
    "listen = 0.0.0.0\n"
    f"port = {TUNER_PORT}\n"
    f"password = {tuner_password}\n"
    + (f"proxy_protocol_from = {data.ccr_proxy_from}\n" if data.ccr_proxy_from else "")
    + "\n"
    "[archive]\n"
    "dir = /srv/archive\n"
    "[database]\n"
    "driver = mysql\n"
    f"host = {data.db_host}\n"
    f"port = {data.db_port}\n"
    f"name = {data.db_name}\n"
    "user = cc_rw\n"
    f"password = {password}\n"
)

# Like ccrun: refresh the package lists only when the host has none (a fresh machine).
if not host.get_fact(FindFiles, path="/var/lib/apt/lists", maxdepth=1, fname="*_Packages"):
    apt.update(name="apt package lists (a fresh host has none)")
apt.packages(
    name="NFS client (nfs-common, rpcbind) installed",
    packages=["nfs-common", "rpcbind"],
    no_recommends=True,
)
server.service(name="rpcbind started and enabled at boot", service="rpcbind", running=True, enabled=True)

for path, options in NFS_MOUNTS:
    files.line(
        name=f"fstab line for {path}",
        path="/etc/fstab",
        line=rf"^[^#[:space:]]+[[:space:]]+{re.escape(path)}[[:space:]].*$",
        replace=f"{data.nfs_server}:{path} {path} nfs {options} 0 0",
    )
for path, _ in NFS_MOUNTS:
    files.directory(name=f"mount point {path}", path=path)
    server.mount(name=f"{path} mounted", path=path, mounted=True)

apt.packages(
    name="the C++ runtime ccr loads and the MySQL 8 login plugins installed",
    packages=["libstdc++6", "libmariadb3"],
    no_recommends=True,
)
server.group(name="ccr group (same gid on every host)", group="ccr", system=True, gid=CCR_UID)
server.user(
    name="ccr system user (same uid on every host)",
    user="ccr", uid=CCR_UID, group="ccr", system=True,
    home="/var/lib/ccr", shell="/bin/false", ensure_home=False,
)
files.directory(name="/etc/ccr", path="/etc/ccr", mode="755", user="root", group="root")
binary = files.put(
    name="ccr binary at /usr/local/bin/ccr",
    src=data.ccr_binary, dest="/usr/local/bin/ccr", mode="755", user="root", group="root",
)
conf = files.put(
    name="/etc/ccr/ccr.conf (tuner password, cc_rw and its password; 0600)",
    src=io.StringIO(config), dest="/etc/ccr/ccr.conf", mode="600", user="ccr", group="ccr",
)
files.put(
    name="ccr init script",
    src=data.ccr_init_script, dest="/etc/init.d/ccr", mode="755", user="root", group="root",
)
# Decided when pyinfra plans the deploy (will_change), so its dry run shows exactly this change.
if binary.will_change or conf.will_change:
    server.shell(
        name="restart ccr when its binary or configuration changed",
        commands=[
            "if service ccr status >/dev/null 2>&1; then service ccr restart; fi",
            "mkdir -p /var/lib/ccrun/stamps",
            "sha256sum /etc/ccr/ccr.conf /usr/local/bin/ccr > /var/lib/ccrun/stamps/ccr.sha256",
        ],
    )
started = server.service(name="ccr started and enabled at boot", service="ccr", running=True, enabled=True)
# pyinfra's server.wait needs netstat; the same wait with bash's /dev/tcp, only after a start.
if started.will_change:
    server.shell(
        name="ccr answers tuners on its port",
        commands=[
            f"i=0; until timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{TUNER_PORT}' 2>/dev/null; do "
            "i=$((i+1)); [ $i -lt 150 ] || exit 1; sleep 0.2; done",
        ],
    )
