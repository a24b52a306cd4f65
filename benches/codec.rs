//! `cargo bench --bench codec`: decoding + validating EXTENDED COPY parameter lists of 1024
//! segment descriptors, in segment descriptors per second. Reports; asserts nothing.

use std::hint::black_box;
use std::time::{Duration, Instant};

use xcopyd::scsi::parameter_list::{evaluate, Verdict};
use xcopyd::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use xcopyd::scsi::target_descriptor::{CscdDescriptor, CscdIdentifier, DeviceParameters};
use xcopyd::scsi::{Designator, Limits, ListIdUsage, ParameterList, Supported};

fn cscd(name: &str, pdt: u8, parameters: DeviceParameters) -> CscdDescriptor {
    CscdDescriptor {
        nul: false,
        peripheral_device_type: pdt,
        relative_initiator_port: 0,
        identifier: CscdIdentifier::Identification {
            designator: Designator::parse_name(name).unwrap(),
        },
        parameters,
    }
}

fn list(segments: Vec<SegmentDescriptor>) -> Vec<u8> {
    ParameterList {
        list_identifier: 1,
        sequential_striped: false,
        list_id_usage: ListIdUsage::Hold,
        priority: 1,
        cscds: vec![
            cscd(
                "naa.5001405a1b2c3d01",
                0,
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
            cscd(
                "naa.5001405a1b2c3d02",
                1,
                DeviceParameters::Stream {
                    pad: true,
                    fixed: false,
                    block_length: 0,
                },
            ),
            cscd(
                "naa.5001405a1b2c3d03",
                0,
                DeviceParameters::Block {
                    pad: false,
                    block_length: 512,
                },
            ),
        ],
        segments,
        inline_data: Vec::new(),
    }
    .encode()
}

fn measure(name: &str, bytes: &[u8], segments: usize) {
    let limits = Limits::default();
    // Warm up, and check the list is accepted.
    assert!(matches!(
        evaluate(bytes, &limits, Supported::default()),
        Verdict::Accepted(_)
    ));
    // Fixed work for instruction counting (valgrind --tool=callgrind), no timing.
    if let Some(n) = std::env::var("XCOPY_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        for _ in 0..n {
            black_box(evaluate(black_box(bytes), &limits, Supported::default()));
        }
        println!("{name}: {n} iterations");
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            for _ in 0..64 {
                black_box(evaluate(black_box(bytes), &limits, Supported::default()));
            }
            n += 64;
        }
        runs.push(n as f64 * segments as f64 / start.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    let median = runs[runs.len() / 2];
    println!(
        "{name:40} {:6} bytes  {:8.1} M segment descriptors/s (median of 7; min {:.1}, max {:.1})",
        bytes.len(),
        median / 1e6,
        runs[0] / 1e6,
        runs[runs.len() - 1] / 1e6
    );
}

fn main() {
    let b2b: Vec<_> = (0..1024u64)
        .map(|i| SegmentDescriptor {
            cat: false,
            body: Segment::BlockToBlock {
                hold: false,
                dc: false,
                source: CscdId(0),
                destination: CscdId(2),
                blocks: 8192,
                source_lba: i * 8192,
                destination_lba: i * 8192,
            },
        })
        .collect();
    measure("1024 x 02h block->block", &list(b2b), 1024);
    let b2s: Vec<_> = (0..1024u64)
        .map(|i| SegmentDescriptor {
            cat: i % 2 == 0,
            body: Segment::BlockToStream {
                hold: false,
                source: CscdId(0),
                destination: CscdId(1),
                stream_transfer_length: 262144,
                blocks: 512,
                lba: i * 512,
            },
        })
        .collect();
    measure("1024 x 00h block->stream (CAT chain)", &list(b2s), 1024);
}
