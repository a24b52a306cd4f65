//! The end of a segment: what happens to leftover source data (read but not processed) and
//! leftover destination data (not a whole destination unit), decided without any I/O from
//! the segment's PAD and CAT bits (SPC-4 Table 116, all five rows; Part B 3.3) and its type
//! (the footnote: a segment whose destination amount is exact).

/// The PAD/CAT inputs of a segment's end (Part B 3.3, SPC-4 Table 116).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residue {
    pub cat: bool,
    pub source_pad: bool,
    pub destination_pad: bool,
    /// The last segment of the list: carried leftovers are dropped silently.
    pub last: bool,
    /// 01h, 02h/0Dh with DC=1, 09h, 0Ah, 0Ch: the destination amount is exact, so leftover
    /// destination data is 26/0A even with destination PAD (the footnote to Table 116).
    pub exact_destination: bool,
}

/// What the end of a segment does with its leftovers. With `inexact` nothing else applies:
/// the segment fails (COPY ABORTED, UNEXPECTED INEXACT SEGMENT) and the list ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndOfSegment {
    /// COPY ABORTED, 26/0A UNEXPECTED INEXACT SEGMENT.
    pub inexact: bool,
    /// Leftover destination data is padded with zeros to a whole destination unit and
    /// written (the pad bytes count as written, not as processed).
    pub pad_destination: bool,
    /// Leftover destination data is dropped.
    pub drop_destination: bool,
    /// Leftover source data is dropped; otherwise it is the next segment's first source data.
    pub drop_source: bool,
}

impl Residue {
    /// The end of a segment that left source data (`source_left`) and destination data
    /// (`destination_left`) over.
    pub fn end(&self, source_left: bool, destination_left: bool) -> EndOfSegment {
        let none = EndOfSegment::default();
        if self.cat {
            // Row 1: both carried into the next segment; after the last, dropped silently.
            return EndOfSegment {
                drop_source: self.last,
                drop_destination: self.last,
                ..none
            };
        }
        let inexact = EndOfSegment {
            inexact: true,
            ..none
        };
        match (self.source_pad, self.destination_pad) {
            // Row 5: any leftover is an error.
            (false, false) if source_left || destination_left => inexact,
            (false, false) => none,
            // The footnote: an exact destination amount cannot be padded up to.
            (_, true) if destination_left && self.exact_destination => inexact,
            // Rows 2 and 3: destination padded; source dropped (row 2) or kept as if CAT=1
            // (row 3), which the last segment drops.
            (source_pad, true) => EndOfSegment {
                pad_destination: destination_left,
                drop_source: source_pad || self.last,
                ..none
            },
            // Row 4: both dropped, no error, no padding.
            (true, false) => EndOfSegment {
                drop_source: true,
                drop_destination: true,
                ..none
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (source PAD, destination PAD, CAT, last, source left, destination left).
    type Case = (bool, bool, bool, bool, bool, bool);
    /// (inexact, pad destination, drop destination, drop source).
    type Want = (bool, bool, bool, bool);

    /// SPC-4 Table 116 as Part B 3.3 gives it, row by row, for every combination of
    /// leftovers and for a middle and the last segment: (source PAD, destination PAD, CAT,
    /// last, source left, destination left) -> (inexact, pad, drop destination, drop source).
    #[test]
    fn every_row_of_table_116_with_both_leftover_directions() {
        const T: bool = true;
        const F: bool = false;
        #[rustfmt::skip]
        let table: &[(Case, Want)] = &[
            // Row 1, CAT=1 (any PAD): keep both for the next segment; the last drops both.
            ((F, F, T, F, T, T), (F, F, F, F)),
            ((T, T, T, F, T, F), (F, F, F, F)),
            ((T, F, T, F, F, T), (F, F, F, F)),
            ((F, T, T, F, T, T), (F, F, F, F)),
            ((F, F, T, T, T, T), (F, F, T, T)),
            ((T, T, T, T, T, F), (F, F, T, T)),
            // Row 2, PAD 1/1: drop source, pad destination.
            ((T, T, F, F, T, F), (F, F, F, T)),
            ((T, T, F, F, F, T), (F, T, F, T)),
            ((T, T, F, F, T, T), (F, T, F, T)),
            ((T, T, F, T, F, T), (F, T, F, T)),
            // Row 3, PAD 0/1: keep source as if CAT=1 (dropped by the last), pad destination.
            ((F, T, F, F, T, F), (F, F, F, F)),
            ((F, T, F, F, F, T), (F, T, F, F)),
            ((F, T, F, F, T, T), (F, T, F, F)),
            ((F, T, F, T, T, F), (F, F, F, T)),
            ((F, T, F, T, T, T), (F, T, F, T)),
            // Row 4, PAD 1/0: drop both, no error, no padding.
            ((T, F, F, F, T, F), (F, F, T, T)),
            ((T, F, F, F, F, T), (F, F, T, T)),
            ((T, F, F, T, T, T), (F, F, T, T)),
            // Row 5, PAD 0/0: any leftover, either way, is 26/0A; none is fine.
            ((F, F, F, F, T, F), (T, F, F, F)),
            ((F, F, F, F, F, T), (T, F, F, F)),
            ((F, F, F, T, T, T), (T, F, F, F)),
            ((F, F, F, F, F, F), (F, F, F, F)),
        ];
        for &((source_pad, destination_pad, cat, last, sl, dl), want) in table {
            for exact_destination in [false, true] {
                let residue = Residue {
                    cat,
                    source_pad,
                    destination_pad,
                    last,
                    exact_destination,
                };
                // The footnote changes only a padded destination of an exact segment.
                let want = if exact_destination && want.1 {
                    (true, false, false, false)
                } else {
                    want
                };
                let e = residue.end(sl, dl);
                assert_eq!(
                    (
                        e.inexact,
                        e.pad_destination,
                        e.drop_destination,
                        e.drop_source
                    ),
                    want,
                    "{residue:?} source_left={sl} destination_left={dl}"
                );
            }
        }
    }

    /// With nothing left over, no row refuses, pads or fails, whatever the bits.
    #[test]
    fn an_exact_segment_never_fails_or_pads() {
        for bits in 0u8..32 {
            let b = |n: u8| bits & (1 << n) != 0;
            let r = Residue {
                cat: b(0),
                source_pad: b(1),
                destination_pad: b(2),
                last: b(3),
                exact_destination: b(4),
            };
            let e = r.end(false, false);
            assert!(!e.inexact && !e.pad_destination, "{r:?}");
        }
    }
}
