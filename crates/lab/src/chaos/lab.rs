//! The chaos runner's network: one network namespace per node, each joined by a veth pair to
//! a bridge in the runner's namespace, where the relay listens. Made with `ip` and `tc` from
//! iproute2 when a run starts and removed when it ends (and, if a runner was killed, by the
//! next one).
//!
//! Node `k` lives in namespace `tc<pid>n<k>` at `10.<a>.<b>.<k + 10>`; the bridge holds
//! `10.<a>.<b>.1`, the relay's address. Forwarding between namespaces is not needed: a node
//! reaches the relay and the runner, and the relay reaches the nodes.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Prefix of every namespace and interface a runner makes.
const PREFIX: &str = "tc";

/// The namespaces, veths and bridge of one run.
pub(crate) struct Lab {
    id: u32,
    nodes: usize,
    subnet: [u8; 3],
}

/// Runs `program args`, failing with its standard error if it fails.
fn run(program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (iproute2 is needed: apt-get install iproute2)"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The standard output of `program args`, or empty.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Lab {
    /// Makes the bridge and `nodes` namespaces (needs root, or CAP_NET_ADMIN and
    /// CAP_SYS_ADMIN). Leftovers of runners that no longer run are removed first.
    pub(crate) fn create(nodes: usize) -> Result<Lab> {
        if nodes > 200 {
            bail!("the lab holds at most 200 nodes, asked for {nodes}");
        }
        remove_leftovers();
        let id = std::process::id();
        let subnet = free_subnet()?;
        let lab = Lab { id, nodes, subnet };
        let bridge = lab.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"]).context(
            "making a bridge: the chaos runner needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) for network namespaces",
        )?;
        run(
            "ip",
            &["addr", "add", &format!("{}/24", lab.relay_ip()), "dev", &bridge],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for k in 0..nodes {
            let (ns, host, inner) = (lab.namespace(k), lab.host_veth(k), lab.inner_veth(k));
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            run("ip", &["link", "set", &inner, "netns", &ns])?;
            run("ip", &["link", "set", &host, "master", &bridge])?;
            run("ip", &["link", "set", &host, "up"])?;
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", ns.as_str(), "ip"];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            exec(&["link", "set", "lo", "up"])?;
            exec(&["addr", "add", &format!("{}/24", lab.node_ip(k)), "dev", &inner])?;
            exec(&["link", "set", &inner, "up"])?;
        }
        Ok(lab)
    }

    /// The relay's (and the runner's) address on the bridge.
    pub(crate) fn relay_ip(&self) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, 1))
    }

    /// Node `k`'s address.
    pub(crate) fn node_ip(&self, k: usize) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, u8::try_from(k + 10).unwrap_or(u8::MAX)))
    }

    /// Node `k`'s namespace.
    pub(crate) fn namespace(&self, k: usize) -> String {
        format!("{PREFIX}{}n{k}", self.id)
    }

    fn bridge(&self) -> String {
        format!("{PREFIX}{}br", self.id)
    }

    /// The runner's end of node `k`'s veth pair (names are at most 15 bytes).
    fn host_veth(&self, k: usize) -> String {
        format!("{PREFIX}{}h{k}", self.id)
    }

    fn inner_veth(&self, k: usize) -> String {
        format!("{PREFIX}{}i{k}", self.id)
    }

    /// Takes node `k`'s link down or up (the runner's end of its veth).
    pub(crate) fn set_link(&self, k: usize, up: bool) -> Result<()> {
        run(
            "ip",
            &["link", "set", &self.host_veth(k), if up { "up" } else { "down" }],
        )
    }

    /// Caps what node `k` receives to `kbit` per second (a token bucket on the runner's end
    /// of its veth), or lifts the cap.
    pub(crate) fn set_bandwidth(&self, k: usize, kbit: Option<u64>) -> Result<()> {
        let dev = self.host_veth(k);
        match kbit {
            Some(kbit) => run(
                "tc",
                &[
                    "qdisc",
                    "replace",
                    "dev",
                    &dev,
                    "root",
                    "tbf",
                    "rate",
                    &format!("{kbit}kbit"),
                    "burst",
                    "32kbit",
                    "latency",
                    "400ms",
                ],
            ),
            None => run("tc", &["qdisc", "del", "dev", &dev, "root"]),
        }
    }

    /// Removes everything this lab made.
    fn remove(&self) {
        for k in 0..self.nodes {
            let _ = run("ip", &["netns", "del", &self.namespace(k)]);
            let _ = run("ip", &["link", "del", &self.host_veth(k)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge()]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The runner id in a name this module made (`tc<pid>…`), if it is one.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let tail = rest.get(digits.len()..)?;
    if !(tail.starts_with('n') || tail.starts_with('h') || tail.starts_with('i') || tail == "br") {
        return None;
    }
    digits.parse().ok()
}

/// Removes namespaces and links of runners whose process is gone, and kills the nodes still
/// running in those namespaces (a runner killed by SIGKILL could not stop them).
fn remove_leftovers() {
    let gone = |name: &str| owner(name).is_some_and(|pid| !alive(pid));
    for line in output("ip", &["netns", "list"]).lines() {
        if let Some(name) = line.split_whitespace().next()
            && gone(name)
        {
            for pid in output("ip", &["netns", "pids", name]).split_whitespace() {
                let _ = run("kill", &["-KILL", pid]);
            }
            let _ = run("ip", &["netns", "del", name]);
        }
    }
    for line in output("ip", &["-o", "link", "show"]).lines() {
        // `7: tc123br: <…>` or `8: tc123h0@if9: <…>`
        if let Some(name) = line.split(": ").nth(1).and_then(|n| n.split('@').next())
            && gone(name)
        {
            let _ = run("ip", &["link", "del", name]);
        }
    }
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// A /24 in 10.0.0.0/8 that no interface here uses, picked from the process id.
fn free_subnet() -> Result<[u8; 3]> {
    let used = output("ip", &["-o", "-4", "addr", "show"]);
    let start = std::process::id();
    for step in 0..4096u32 {
        let n = start.wrapping_add(step.wrapping_mul(7919)) % 4096;
        let subnet = [
            10,
            200 + u8::try_from(n / 256 % 50).unwrap_or(0),
            u8::try_from(n % 256).unwrap_or(0),
        ];
        let [a, b, c] = subnet;
        if !used.contains(&format!(" {a}.{b}.{c}.")) {
            return Ok(subnet);
        }
    }
    bail!("no free /24 in 10.200.0.0/13 for the lab")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_a_runner_are_claimed() {
        assert_eq!(owner("tc123n0"), Some(123));
        assert_eq!(owner("tc123br"), Some(123));
        assert_eq!(owner("tc9h12"), Some(9));
        assert_eq!(owner("tc9i3"), Some(9));
        assert_eq!(owner("tc9x3"), None);
        assert_eq!(owner("tcpdump"), None);
        assert_eq!(owner("eth0"), None);
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
