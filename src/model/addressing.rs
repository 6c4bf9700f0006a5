//! The address plan over plain numbers: how the VPC splits into zone subnets and which fixed
//! offsets of a zone's subnet the brokers and the ec2 workers take. Placements
//! ([`super::broker_placements`], [`super::worker_placements`]) and validation
//! (`config::environment`) both call it, so they cannot disagree; it imports nothing of the
//! crate.

/// The zone subnets are the VPC split in 16 blocks: a /16 VPC gives /20 subnets.
pub const SUBNET_SPLIT_BITS: u8 = 4;

/// Offset, in its zone's subnet, of the first fixed instance address (AWS reserves the first
/// four addresses; the brokers start here, the ec2 workers right after them).
pub const FIRST_FIXED_HOST: u32 = 10;

/// Prefix length of each zone's subnet for a VPC of prefix length `vpc_prefix`.
pub fn subnet_prefix(vpc_prefix: u8) -> u8 {
    vpc_prefix + SUBNET_SPLIT_BITS
}

/// The last offset of a subnet of prefix length `prefix` an instance may take (AWS keeps the
/// broadcast address, the last one); prefixes above /30 count as /30.
pub fn last_usable_offset(prefix: u8) -> u32 {
    (1u32 << (32 - u32::from(prefix.min(30)))) - 2
}

/// Where the fixed instances go: instance `i` of a kind goes to zone `i mod zones`, at the
/// next free offset of that zone's subnet; brokers first, then the ec2 workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedSlots {
    /// Number of zones (at least 1).
    pub zones: u32,
    /// Fixed offsets the brokers take per zone.
    pub broker_slots: u32,
    /// Fixed offsets the ec2 workers take per zone.
    pub worker_slots: u32,
}

impl FixedSlots {
    /// The slots of `brokers` brokers and `workers` ec2 worker instances over `zones` zones.
    pub fn new(zones: usize, brokers: u32, workers: u32) -> Self {
        let zones = u32::try_from(zones).unwrap_or(u32::MAX).max(1);
        Self { zones, broker_slots: brokers.div_ceil(zones), worker_slots: workers.div_ceil(zones) }
    }

    /// Broker `index` -> (zone index, offset in that zone's subnet).
    pub fn broker(&self, index: u32) -> (usize, u32) {
        ((index % self.zones) as usize, FIRST_FIXED_HOST + index / self.zones)
    }

    /// Ec2 worker `index` -> (zone index, offset in that zone's subnet).
    pub fn worker(&self, index: u32) -> (usize, u32) {
        ((index % self.zones) as usize, FIRST_FIXED_HOST + self.broker_slots + index / self.zones)
    }

    /// The highest offset the brokers take (`FIRST_FIXED_HOST - 1` when there are none).
    pub fn brokers_top(&self) -> u32 {
        FIRST_FIXED_HOST - 1 + self.broker_slots
    }

    /// The highest offset brokers and workers take together.
    pub fn top(&self) -> u32 {
        self.brokers_top() + self.worker_slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_then_workers_round_robin_over_the_zones() {
        let slots = FixedSlots::new(2, 3, 3);
        assert_eq!((0..3).map(|i| slots.broker(i)).collect::<Vec<_>>(), [(0, 10), (1, 10), (0, 11)]);
        assert_eq!((0..3).map(|i| slots.worker(i)).collect::<Vec<_>>(), [(0, 12), (1, 12), (0, 13)]);
        assert_eq!((slots.brokers_top(), slots.top()), (11, 13));
        assert_eq!(FixedSlots::new(0, 1, 0).zones, 1, "no zone counts as one");
    }

    #[test]
    fn subnets_are_a_sixteenth_of_the_vpc() {
        assert_eq!(subnet_prefix(16), 20);
        assert_eq!(last_usable_offset(20), 4094);
        assert_eq!(last_usable_offset(28), 14);
        assert_eq!(last_usable_offset(32), 2, "above /30 counts as /30");
    }
}
