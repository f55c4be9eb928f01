//! A small guest memory and the split queue in it, laid out as a driver
//! would, for the targets to hand descriptor chains to the devices' code.

use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use crate::devices::virtio::GuestMemory;

/// Descriptors in a target's queue.
pub(super) const QUEUE_SIZE: u16 = 16;
/// Bytes of the descriptor table (16 bytes a descriptor).
pub(super) const TABLE_LEN: usize = QUEUE_SIZE as usize * 16;
/// Where the descriptor table, the available and used rings, and the
/// buffers the descriptors point at lie in guest memory.
pub(super) const DESC_TABLE: u64 = 0;
pub(super) const AVAIL_RING: u64 = 0x1000;
pub(super) const USED_RING: u64 = 0x2000;
pub(super) const BUFFERS: u64 = 0x1_0000;
/// The guest memory: room for the largest packet's buffers.
pub(super) const MEMORY_SIZE: usize = 0x3_0000;

/// A guest memory of [`MEMORY_SIZE`] bytes.
pub(super) fn guest_memory() -> GuestMemory {
    GuestMemory::from_ranges(&[(GuestAddress(0), MEMORY_SIZE)]).expect("a small guest memory")
}

/// Lays out the chain `data` describes in `mem`: its first 256 bytes are
/// the descriptor table (16 descriptors: address, length, flags, next),
/// the rest lies at [`BUFFERS`], where the buffers usually are. Returns
/// the chain, which starts at descriptor 0.
pub(super) fn laid_out_chain<'a>(
    mem: &'a GuestMemory,
    data: &[u8],
) -> DescriptorChain<&'a GuestMemory> {
    let (table, buffers) = data.split_at(data.len().min(TABLE_LEN));
    write_buffers(mem, buffers);
    chain(mem, table)
}

/// Writes `buffers` at [`BUFFERS`], cut to what fits.
pub(super) fn write_buffers(mem: &GuestMemory, buffers: &[u8]) {
    let buffers = &buffers[..buffers.len().min(MEMORY_SIZE - BUFFERS as usize)];
    mem.write_slice(buffers, GuestAddress(BUFFERS))
        .expect("the buffers fit");
}

/// The chain a driver offers with descriptor table `table` (at most
/// [`QUEUE_SIZE`] descriptors), starting at descriptor 0.
pub(super) fn chain<'a>(mem: &'a GuestMemory, table: &[u8]) -> DescriptorChain<&'a GuestMemory> {
    ready_queue(mem, table, &[0])
        .pop_descriptor_chain(mem)
        .expect("the chain the available ring names")
}

/// A queue a driver set up with descriptor table `table` (at most
/// [`QUEUE_SIZE`] descriptors), offering the chains at `heads` (at most
/// [`QUEUE_SIZE`] of them; a head past the table is the driver's error to
/// make), and an empty used ring.
pub(super) fn ready_queue(mem: &GuestMemory, table: &[u8], heads: &[u16]) -> Queue {
    mem.write_slice(&[0; TABLE_LEN], GuestAddress(DESC_TABLE))
        .expect("the descriptor table fits");
    mem.write_slice(table, GuestAddress(DESC_TABLE))
        .expect("the descriptor table fits");
    // The available ring: no flags, the index, the heads.
    let heads = &heads[..heads.len().min(usize::from(QUEUE_SIZE))];
    mem.write_obj(0u16, GuestAddress(AVAIL_RING))
        .expect("the available ring fits");
    mem.write_obj(heads.len() as u16, GuestAddress(AVAIL_RING + 2))
        .expect("the available ring fits");
    for (slot, &head) in heads.iter().enumerate() {
        mem.write_obj(head, GuestAddress(AVAIL_RING + 4 + 2 * slot as u64))
            .expect("the available ring fits");
    }
    mem.write_slice(&[0; 4], GuestAddress(USED_RING))
        .expect("the used ring fits");
    let mut queue = Queue::new(QUEUE_SIZE).expect("a valid queue size");
    queue.set_desc_table_address(Some(DESC_TABLE as u32), Some(0));
    queue.set_avail_ring_address(Some(AVAIL_RING as u32), Some(0));
    queue.set_used_ring_address(Some(USED_RING as u32), Some(0));
    queue.set_ready(true);
    queue
}

/// The entries the device put on the used ring of a [`ready_queue`]:
/// head and length of each.
pub(super) fn used_entries(mem: &GuestMemory) -> Vec<(u32, u32)> {
    let count: u16 = mem
        .read_obj(GuestAddress(USED_RING + 2))
        .expect("the used ring");
    (0..u64::from(count.min(QUEUE_SIZE)))
        .map(|slot| {
            let entry = USED_RING + 4 + 8 * slot;
            let head = mem.read_obj(GuestAddress(entry)).expect("a used entry");
            let len = mem.read_obj(GuestAddress(entry + 4)).expect("a used entry");
            (head, len)
        })
        .collect()
}

/// A descriptor as a driver writes it in the table.
pub(super) fn descriptor(addr: u64, len: u32, flags: u16, next: u16) -> Vec<u8> {
    [
        &addr.to_le_bytes()[..],
        &len.to_le_bytes(),
        &flags.to_le_bytes(),
        &next.to_le_bytes(),
    ]
    .concat()
}
