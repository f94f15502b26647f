//! The benchmark's network: one `timed` process per node, logging to `nodeK/timed.log`, with
//! its CPU time and peak memory read from `/proc` (by `procfs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde_json::json;
use timecoin_rpc::Client;

/// The running nodes; dropping them stops them.
pub(crate) struct Nodes {
    exe: PathBuf,
    dirs: Vec<PathBuf>,
    children: Vec<Option<Child>>,
    /// How each node is started: in which network namespace, with which extra environment.
    launch: Vec<Launch>,
    /// Arguments every node gets, on every start (`-v` for debug logs).
    args: Vec<String>,
}

/// The `timed` binary the lab starts: `$TIMED` if set, else the `timed` beside this binary
/// (cargo builds every binary of the workspace into one directory).
fn timed_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("TIMED") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the timelab binary")?;
    let timed = exe.with_file_name(format!("timed{}", std::env::consts::EXE_SUFFIX));
    if !timed.exists() {
        bail!(
            "no `timed` binary beside {}: build it first (`cargo build --release -p timecoin-node`), or name it in $TIMED",
            exe.display()
        );
    }
    Ok(timed)
}

/// Where and how a node's process starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Launch {
    /// The network namespace to run in (`ip netns exec`), if any.
    pub(crate) netns: Option<String>,
    /// Extra environment variables.
    pub(crate) env: Vec<(String, String)>,
}

/// What one node used during the load.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Usage {
    pub(crate) cpu_seconds: f64,
    /// CPU seconds per second of wall time (1.0 is one core busy).
    pub(crate) cpu_cores: f64,
    /// The part of `cpu_seconds` spent on the signature verification pool's threads
    /// (`verify-N`).
    pub(crate) verify_cpu_seconds: f64,
    /// The most resident memory the process held over its life (`VmHWM`).
    pub(crate) peak_rss_bytes: u64,
}

/// CPU time of each node at one moment: in all, and on its verification threads.
pub(crate) struct CpuMark {
    at: Instant,
    ticks: Vec<(u64, u64)>,
}

impl Nodes {
    /// Starts every node of the network in `net`.
    pub(crate) fn start(net: &Path) -> Result<Nodes> {
        Nodes::start_with(net, Vec::new(), Vec::new())
    }

    /// Starts every node of the network in `net`, node `k` as `launch[k]` says (as a plain
    /// child process when it says nothing), each with `args` too.
    pub(crate) fn start_with(net: &Path, launch: Vec<Launch>, args: Vec<String>) -> Result<Nodes> {
        let dirs = timecoin_node::localnet::node_configs(net)?
            .iter()
            .filter_map(|config| config.parent().map(Path::to_path_buf))
            .collect::<Vec<_>>();
        let mut nodes = Nodes {
            exe: timed_binary()?,
            children: dirs.iter().map(|_| None).collect(),
            launch: (0..dirs.len())
                .map(|k| launch.get(k).cloned().unwrap_or_default())
                .collect(),
            dirs,
            args,
        };
        for i in 0..nodes.dirs.len() {
            nodes.start_one(i)?;
        }
        Ok(nodes)
    }

    pub(crate) fn len(&self) -> usize {
        self.dirs.len()
    }

    pub(crate) fn dir(&self, i: usize) -> Result<&Path> {
        self.dirs
            .get(i)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("no node {i}"))
    }

    /// Starts node `i`, its output appended to its `timed.log`.
    pub(crate) fn start_one(&mut self, i: usize) -> Result<()> {
        let dir = self.dir(i)?.to_path_buf();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("timed.log"))
            .with_context(|| format!("opening {}", dir.join("timed.log").display()))?;
        let launch = self.launch.get(i).cloned().unwrap_or_default();
        let mut command = match &launch.netns {
            // `ip netns exec` execs the node in place, so the child's pid is the node's.
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns.as_str()]).arg(&self.exe);
                command
            }
            None => Command::new(&self.exe),
        };
        let child = command
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        if let Some(slot) = self.children.get_mut(i) {
            *slot = Some(child);
        }
        Ok(())
    }

    /// A JSON-RPC client of node `i` (its cookie must be written).
    pub(crate) fn client(&self, i: usize) -> Result<Client> {
        timecoin_node::localnet::node_client(self.dir(i)?)
            .map(|client| client.timeout(Duration::from_secs(60)))
            .ok_or_else(|| anyhow!("node {i} has no JSON-RPC cookie yet"))
    }

    /// Waits until every node answers over JSON-RPC and the first block is finalized.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.len() {
            loop {
                self.check_running(i)?;
                let height = self
                    .client(i)
                    .ok()
                    .and_then(|c| c.call("getblockcount", json!([])).ok())
                    .and_then(|v| v.as_u64());
                if height.is_some_and(|h| h >= 1) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node {i} did not finalize a block within {} s; see {}",
                        timeout.as_secs(),
                        self.dir(i)?.join("timed.log").display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Fails if node `i` exited.
    fn check_running(&mut self, i: usize) -> Result<()> {
        let log = self.dir(i)?.join("timed.log");
        if let Some(Some(child)) = self.children.get_mut(i)
            && let Some(status) = child.try_wait()?
        {
            bail!("node {i} exited ({status}); see {}", log.display());
        }
        Ok(())
    }

    /// Stops node `i` with SIGTERM (SIGKILL after 15 s) and waits for it.
    pub(crate) fn stop_one(&mut self, i: usize) -> Result<()> {
        let Some(mut child) = self.children.get_mut(i).and_then(Option::take) else {
            return Ok(());
        };
        // A node stopped by SIGSTOP would never see the SIGTERM.
        let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("node {i} did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Sets how node `i` starts from its next start on.
    pub(crate) fn set_launch(&mut self, i: usize, launch: Launch) {
        if let Some(slot) = self.launch.get_mut(i) {
            *slot = launch;
        }
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`…) to node `i`; after `KILL` it waits for the
    /// process to end. Nothing happens when the node is not running.
    pub(crate) fn signal(&mut self, i: usize, signal: &str) -> Result<()> {
        let Some(child) = self.children.get_mut(i).and_then(Option::as_mut) else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} node {i} failed");
        }
        if signal == "KILL" {
            child.wait()?;
            if let Some(slot) = self.children.get_mut(i) {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Removes node `i`'s chain store (it must be stopped).
    pub(crate) fn wipe_chain(&self, i: usize) -> Result<()> {
        let store = self.dir(i)?.join("chain.redb");
        std::fs::remove_file(&store).with_context(|| format!("removing {}", store.display()))
    }

    /// Stops every node.
    pub(crate) fn stop(&mut self) {
        for i in 0..self.len() {
            let _ = self.stop_one(i);
        }
    }

    /// Each node's CPU time now.
    pub(crate) fn cpu_mark(&self) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            ticks: self
                .pids()
                .map(|pid| pid.map_or((0, 0), |pid| (cpu_ticks(pid), verify_ticks(pid))))
                .collect(),
        }
    }

    /// What each node used since `mark`.
    pub(crate) fn usage_since(&self, mark: &CpuMark) -> Vec<Usage> {
        let seconds = mark.at.elapsed().as_secs_f64().max(1e-9);
        // USER_HZ: 100 on every Linux the lab runs on, but the kernel says.
        let ticks_per_second = procfs::ticks_per_second().max(1) as f64;
        self.pids()
            .zip(&mark.ticks)
            .map(|(pid, (before, verify_before))| {
                let ticks = pid.map_or(0, cpu_ticks).saturating_sub(*before);
                let verify = pid.map_or(0, verify_ticks).saturating_sub(*verify_before);
                let cpu_seconds = ticks as f64 / ticks_per_second;
                Usage {
                    cpu_seconds,
                    cpu_cores: cpu_seconds / seconds,
                    verify_cpu_seconds: verify as f64 / ticks_per_second,
                    peak_rss_bytes: pid.map_or(0, peak_rss),
                }
            })
            .collect()
    }

    fn pids(&self) -> impl Iterator<Item = Option<u32>> + '_ {
        self.children.iter().map(|c| c.as_ref().map(Child::id))
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// User plus system CPU time of process `pid`, in clock ticks (`/proc/PID/stat`); 0 when it
/// is gone.
fn cpu_ticks(pid: u32) -> u64 {
    process(pid)
        .and_then(|process| process.stat().ok())
        .map_or(0, |stat| stat.utime.saturating_add(stat.stime))
}

/// User plus system CPU time of the threads of process `pid` named `verify-N` (the node's
/// signature verification pool), in clock ticks; 0 when it is gone.
fn verify_ticks(pid: u32) -> u64 {
    let Some(tasks) = process(pid).and_then(|process| process.tasks().ok()) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| task.stat().ok())
        .filter(|stat| stat.comm.starts_with("verify-"))
        .map(|stat| stat.utime.saturating_add(stat.stime))
        .sum()
}

/// The peak resident set size of process `pid` (`VmHWM` in `/proc/PID/status`), in bytes; 0
/// when it is gone.
fn peak_rss(pid: u32) -> u64 {
    process(pid)
        .and_then(|process| process.status().ok())
        .and_then(|status| status.vmhwm)
        .map_or(0, |kilobytes| kilobytes.saturating_mul(1024))
}

fn process(pid: u32) -> Option<procfs::process::Process> {
    let pid = i32::try_from(pid).ok()?;
    procfs::process::Process::new(pid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_resident_memory() {
        let pid = std::process::id();
        let started = cpu_ticks(pid);
        // Spin until /proc counts at least two more ticks (20 ms of CPU), or give up.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut spins = 0u64;
        while cpu_ticks(pid) < started + 2 && Instant::now() < deadline {
            spins = spins.wrapping_add(std::hint::black_box(1));
        }
        assert!(cpu_ticks(pid) >= started + 2, "no CPU time counted after {spins} spins");
        assert!(peak_rss(pid) > 1_000_000);
        assert_eq!(cpu_ticks(u32::MAX), 0);
    }
}
