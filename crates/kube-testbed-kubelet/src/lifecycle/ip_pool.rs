//! Pod IPs: 127.1.X.Y, on loopback so that nothing ever leaves the machine.

use std::{collections::HashSet, net::Ipv4Addr};

/// 127.1.0.1 – 127.1.254.254.
const SUBNETS: u32 = 255;
const HOSTS: u32 = 254;

#[derive(Debug, Default)]
pub(crate) struct IpPool {
    used: HashSet<Ipv4Addr>,
    next: u32,
}

impl IpPool {
    /// The next free address (handed out in turn, so a deleted pod's address is not reused at once).
    pub fn allocate(&mut self) -> Ipv4Addr {
        for _ in 0..SUBNETS * HOSTS {
            let ip = address(self.next);
            self.next = (self.next + 1) % (SUBNETS * HOSTS);
            if self.used.insert(ip) {
                return ip;
            }
        }
        tracing::warn!("all pod IPs are in use; sharing one");
        address(self.next)
    }

    /// Keeps the address a pod already has (adopted after a restart), if it is ours and free.
    pub fn reserve(&mut self, ip: &str) -> Option<Ipv4Addr> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let [127, 1, _, host] = ip.octets() else {
            return None;
        };
        (host != 0 && host != 255 && self.used.insert(ip)).then_some(ip)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

fn address(index: u32) -> Ipv4Addr {
    let subnet = u8::try_from(index / HOSTS).expect("fewer than 256 subnets");
    let host = u8::try_from(index % HOSTS + 1).expect("fewer than 255 hosts");
    Ipv4Addr::new(127, 1, subnet, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_loopback_and_reusable() {
        let mut pool = IpPool::default();
        assert_eq!(pool.reserve("127.1.0.2"), Some(Ipv4Addr::new(127, 1, 0, 2)));
        assert_eq!(pool.reserve("127.1.0.2"), None, "taken");
        assert_eq!(pool.reserve("10.0.0.1"), None, "not ours");
        let first = pool.allocate();
        let second = pool.allocate();
        assert_eq!(
            (first, second),
            (Ipv4Addr::new(127, 1, 0, 1), Ipv4Addr::new(127, 1, 0, 3))
        );
        let many: HashSet<Ipv4Addr> = (0..600).map(|_| pool.allocate()).collect();
        assert_eq!(many.len(), 600);
        assert!(many.iter().all(|ip| ip.octets()[..2] == [127, 1]
            && ip.octets()[3] != 0
            && ip.octets()[3] != 255));
        pool.release(first);
        assert!(pool.used.len() == 602);
    }
}
