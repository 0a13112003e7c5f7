//! A private PostgreSQL on a loopback port with a throwaway CA, for the TLS
//! tests: started from scratch, stopped and deleted when dropped (a failed
//! assertion included).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::helpers::private_pg_dir;

/// The role that may only log in over TLS with a client certificate.
pub const CERT_USER: &str = "certuser";

/// Whether the server offers TLS.
#[derive(Clone, Copy, PartialEq)]
pub enum Ssl {
    On,
    /// TLS with a self-signed X.509 version 1 certificate (as Citus's
    /// automatic TLS makes them), from the `openssl` command.
    OnX509V1,
    Off,
}

/// A running server and the PEM files around it.
pub struct TlsServer {
    pub port: u16,
    root: PathBuf,
    bindir: PathBuf,
    /// uid and gid of `postgres` when we are root (initdb refuses root).
    run_as: Option<(u32, u32)>,
}

impl TlsServer {
    /// The server's certificate names `localhost` only, issued by `ca.pem`;
    /// `other-ca.pem` is a CA that issued nothing here, and
    /// `client.pem`/`client.key` are [`CERT_USER`]'s, from `ca.pem`.
    pub fn start(ssl: Ssl) -> Self {
        let root = private_pg_dir(&format!("ontab-tls-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&root).expect("test dir");
        let run_as = (id(&["-u"]) == 0).then(|| (id(&["-u", "postgres"]), id(&["-g", "postgres"])));
        let server = Self {
            port: free_port(),
            root,
            bindir: ontab::embedded_pg::find_bindir().expect("PostgreSQL server binaries"),
            run_as,
        };
        server.write_pki();
        if ssl == Ssl::OnX509V1 {
            server.write_x509_v1_server_certificate();
        }
        server.hand_over(&server.root);
        server.run(
            "initdb",
            &[
                "-D",
                &server.path("data"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        server.configure(ssl);
        server.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &server.path("data"),
                "-l",
                &server.path("postgres.log"),
                "-w",
                "-t",
                "30",
            ],
        );
        server
    }

    /// The absolute path of a file of this server.
    pub fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn write_pki(&self) {
        let (ca_pem, issuer) = certificate_authority("ontab test CA");
        let (other_ca_pem, _) = certificate_authority("some other CA");
        let (server_pem, server_key) = issue(
            &issuer,
            vec!["localhost".to_owned()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_pem, client_key) = issue(
            &issuer,
            Vec::new(),
            CERT_USER,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        for (name, pem) in [
            ("ca.pem", ca_pem),
            ("other-ca.pem", other_ca_pem),
            ("server.crt", server_pem),
            ("server.key", server_key),
            ("client.pem", client_pem),
            ("client.key", client_key),
        ] {
            write_private(&self.root.join(name), &pem);
        }
    }

    /// Replaces the server's certificate and key with a self-signed
    /// version 1 pair (`openssl x509 -req -signkey` writes version 1;
    /// rcgen writes only version 3).
    fn write_x509_v1_server_certificate(&self) {
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .output()
                .expect("the openssl command runs");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let (key, request, certificate) = (
            self.path("server.key"),
            self.path("server.csr"),
            self.path("server.crt"),
        );
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-subj",
            "/CN=citus-auto-ssl",
            "-out",
            &request,
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &request,
            "-signkey",
            &key,
            "-days",
            "2",
            "-out",
            &certificate,
        ]);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod key");
    }

    fn configure(&self, ssl: Ssl) {
        let data = self.root.join("data");
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             fsync = off\nmax_connections = 20\nshared_buffers = 16MB\n\
             ssl = {ssl}\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\nssl_ca_file = '{ca}'\n",
            port = self.port,
            ssl = if ssl == Ssl::Off { "off" } else { "on" },
            cert = self.path("server.crt"),
            key = self.path("server.key"),
            ca = self.path("ca.pem"),
        );
        let conf = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&settings);
        fs::write(&conf, text).expect("postgresql.conf");
        // CERT_USER gets in over TLS with a certificate naming it, only.
        let hba = format!(
            "hostnossl all {CERT_USER} 127.0.0.1/32 reject\n\
             hostssl all {CERT_USER} 127.0.0.1/32 trust clientcert=verify-full\n\
             host all all 127.0.0.1/32 trust\n"
        );
        fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        self.hand_over(&self.root);
    }

    /// Gives `dir` and everything in it to the server's user.
    fn hand_over(&self, dir: &Path) {
        let Some((uid, gid)) = self.run_as else {
            return;
        };
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown");
        for entry in fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                self.hand_over(&path);
            } else {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
            }
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program, args);
        assert!(
            output.status.success(),
            "{program} failed: {}{}\nserver log: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
        );
    }

    fn command(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bindir.join(program);
        let mut command = match self.run_as {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .args(args)
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", binary.display()))
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let data = self.path("data");
        let stopped = self.command("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
        if !stopped.status.success() {
            eprintln!(
                "warning: could not stop the TLS test server in {}: {}",
                self.root.display(),
                String::from_utf8_lossy(&stopped.stderr)
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A self-signed CA: its certificate (PEM) and what signs with it.
fn certificate_authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (pem, Issuer::new(params, key))
}

/// A certificate and its key, issued by `issuer`.
fn issue(
    issuer: &Issuer<'_, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    purpose: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![purpose];
    let certificate = params.signed_by(&key, issuer).expect("issued certificate");
    (certificate.pem(), key.serialize_pem())
}

/// PostgreSQL refuses a key file others can read.
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).expect("write PEM");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod PEM");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn id(args: &[&str]) -> u32 {
    let output = Command::new("id").args(args).output().expect("id runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("id prints a number")
}
