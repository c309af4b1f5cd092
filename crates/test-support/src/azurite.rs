//! One Azurite per test: in memory, on OS-chosen loopback ports, telemetry off (always:
//! without `--disableTelemetry` it reports usage and probes a cloud metadata address).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// One Azurite process, killed when dropped.
pub struct Azurite {
    child: Child,
    pub table_port: u16,
    pub queue_port: u16,
    pub blob_port: u16,
}

impl Azurite {
    pub fn start() -> Self {
        let bin = crate::workspace_root().join("node_modules/.bin/azurite");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm ci` in {}",
            crate::workspace_root().display()
        );
        let mut child = Command::new(bin)
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--extentMemoryLimit",
                "64",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                "0",
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Azurite starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ports_tx, ports_rx) = mpsc::channel();
        // Read the "listening" lines, then keep draining so Azurite never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Some(rest) = line.strip_prefix("Azurite ") else {
                    continue;
                };
                let Some((service, url)) =
                    rest.split_once(" service is successfully listening at ")
                else {
                    continue;
                };
                if let Some(port) = url
                    .trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = ports_tx.send((service.to_owned(), port));
                }
            }
        });
        let (mut table, mut queue, mut blob) = (None, None, None);
        while table.is_none() || queue.is_none() || blob.is_none() {
            let (service, port) = ports_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("Azurite reports its ports within 30 s");
            match service.as_str() {
                "Table" => table = Some(port),
                "Queue" => queue = Some(port),
                _ => blob = Some(port),
            }
        }
        Self {
            child,
            table_port: table.unwrap_or_default(),
            queue_port: queue.unwrap_or_default(),
            blob_port: blob.unwrap_or_default(),
        }
    }

    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;\
             BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{}/devstoreaccount1;\
             TableEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            self.blob_port, self.queue_port, self.table_port
        )
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}
