//! What the suite runs and breaks: Azurite with on-disk persistence on fixed loopback ports
//! (so it can be stopped and started again under the same connection string), and
//! `funchost` runners with the real handler, on fixed ports, restartable.

use std::{
    fs::File,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Sends `signal` to one process we started.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Azurite persisting to `location`, on ports fixed for the whole run.
pub struct DiskAzurite {
    pub location: PathBuf,
    pub ports: (u16, u16, u16), // blob, queue, table
    child: Option<Child>,
    log: PathBuf,
    pub starts: u32,
}

impl DiskAzurite {
    pub fn new(work: &Path) -> Self {
        let location = work.join("azurite");
        std::fs::create_dir_all(&location).expect("azurite folder");
        Self {
            location,
            ports: (free_port(), free_port(), free_port()),
            child: None,
            log: work.join("azurite.log"),
            starts: 0,
        }
    }

    pub fn start(&mut self) {
        let bin = repo_root().join("node_modules/.bin/azurite");
        assert!(bin.exists(), "Azurite is not installed: run `npm ci`");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let (blob, queue, table) = self.ports;
        let child = Command::new(bin)
            .arg("--location")
            .arg(&self.location)
            .args(["--disableTelemetry", "--skipApiVersionCheck"])
            .args(["--blobHost", "127.0.0.1", "--blobPort", &blob.to_string()])
            .args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &queue.to_string(),
            ])
            .args([
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                &table.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("Azurite starts");
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(listening(queue) && listening(table)) {
            assert!(
                Instant::now() < deadline,
                "Azurite did not listen within 30 s (see {})",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A clean stop (SIGTERM: Azurite saves its database), as a restart or an outage does.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            if !wait_exit(&mut child, Duration::from_secs(20)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // The ports must be free before the next start.
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening(self.ports.1) || listening(self.ports.2) {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn connection_string(&self) -> String {
        let (blob, queue, table) = self.ports;
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
             BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;\
             TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;"
        )
    }
}

impl Drop for DiskAzurite {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One `funchost` on a fixed port, starting the real handler.
pub struct Runner {
    pub index: usize,
    pub port: u16,
    root: PathBuf,
    work: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Runner {
    pub fn new(index: usize, root: &Path, work: &Path) -> Self {
        Self {
            index,
            port: free_port(),
            root: root.to_owned(),
            work: work.to_owned(),
            child: None,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.work
            .join(format!("runner-{}-{}.log", self.index, self.starts))
    }

    /// Starts the runner; `wait_ready` waits (bounded) for its "listening" line.
    pub fn start(&mut self) {
        self.starts += 1;
        let log_path = self.log();
        let log = File::create(&log_path).expect("log");
        let child = Command::new(test_support::funchost_bin())
            .args(["--port", &self.port.to_string(), "--app-root"])
            .arg(&self.root)
            .args(["--handler", env!("CARGO_BIN_EXE_b2b-signup")])
            .env("NO_COLOR", "1")
            .env_remove("AzureWebJobsStorage")
            .env_remove("B2B_HOST_FUNCTION_KEYS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("the runner starts");
        self.child = Some(child);
    }

    pub fn ready(&self) -> bool {
        std::fs::read_to_string(self.log())
            .map(|t| t.contains("funchost listening on"))
            .unwrap_or(false)
    }

    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.ready() {
                return true;
            }
            if !self.alive() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The handler process the runner started (a child of one of its threads).
    pub fn handler_pid(&self) -> Option<u32> {
        let pid = self.pid()?;
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                if let Some(child) = children.split_whitespace().next() {
                    return child.parse().ok();
                }
            }
        }
        None
    }

    /// kill -9 of the handler: the runner notices and exits, as the host would restart.
    pub fn kill_handler(&self) -> bool {
        match self.handler_pid() {
            Some(pid) => {
                signal(pid, "KILL");
                true
            }
            None => false,
        }
    }

    /// Reaps an exited runner (or one that does not exit within `grace` after its handler
    /// died: it is killed) so it can be started again.
    pub fn reap(&mut self, grace: Duration) {
        let handler = self.handler_pid();
        if let Some(mut child) = self.child.take() {
            if !wait_exit(&mut child, grace) {
                if let Some(pid) = handler {
                    signal(pid, "KILL");
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // The handler dies with the runner (kill_on_drop); kill it first to be sure.
        if let Some(pid) = self.handler_pid() {
            signal(pid, "KILL");
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
