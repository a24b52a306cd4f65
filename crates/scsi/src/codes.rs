//! Open enums for the code points xcopyd speaks: status, sense keys, ASC/ASCQ, opcodes and
//! peripheral device types. Unknown values are kept and printed in hex.
//!
//! Names and values: SPC-3 Table 27 (sense keys), Annex D (ASC/ASCQ, cross-checked against
//! sg3_utils `sg_lib_data.c`), SAM-4 Table 23 (status).

use std::fmt;

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident($ty:ty) { $($(#[$vm:meta])* $c:ident = $v:expr, $s:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $ty);
        #[allow(missing_docs)]
        impl $name {
            $($(#[$vm])* pub const $c: Self = Self($v);)*
            /// The standard's name, or None for a value this table does not know.
            pub fn known_name(self) -> Option<&'static str> {
                match self.0 { $(v if v == $v => Some($s),)* _ => None }
            }
            /// The standard's name, or "reserved".
            pub fn name(self) -> &'static str {
                self.known_name().unwrap_or("reserved or vendor specific")
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.known_name() {
                    Some(n) => write!(f, "{}({:#04x} {})", stringify!($name), self.0, n),
                    None => write!(f, "{}({:#04x})", stringify!($name), self.0),
                }
            }
        }
    };
}

open_enum! {
    /// SCSI status (SAM-4 5.3.1).
    Status(u8) {
        GOOD = 0x00, "GOOD";
        CHECK_CONDITION = 0x02, "CHECK CONDITION";
        CONDITION_MET = 0x04, "CONDITION MET";
        BUSY = 0x08, "BUSY";
        RESERVATION_CONFLICT = 0x18, "RESERVATION CONFLICT";
        TASK_SET_FULL = 0x28, "TASK SET FULL";
        ACA_ACTIVE = 0x30, "ACA ACTIVE";
        TASK_ABORTED = 0x40, "TASK ABORTED";
    }
}

open_enum! {
    /// Sense key (SPC-3 Table 27).
    SenseKey(u8) {
        NO_SENSE = 0x0, "NO SENSE";
        RECOVERED_ERROR = 0x1, "RECOVERED ERROR";
        NOT_READY = 0x2, "NOT READY";
        MEDIUM_ERROR = 0x3, "MEDIUM ERROR";
        HARDWARE_ERROR = 0x4, "HARDWARE ERROR";
        ILLEGAL_REQUEST = 0x5, "ILLEGAL REQUEST";
        UNIT_ATTENTION = 0x6, "UNIT ATTENTION";
        DATA_PROTECT = 0x7, "DATA PROTECT";
        BLANK_CHECK = 0x8, "BLANK CHECK";
        VENDOR_SPECIFIC = 0x9, "VENDOR SPECIFIC";
        COPY_ABORTED = 0xa, "COPY ABORTED";
        ABORTED_COMMAND = 0xb, "ABORTED COMMAND";
        VOLUME_OVERFLOW = 0xd, "VOLUME OVERFLOW";
        MISCOMPARE = 0xe, "MISCOMPARE";
    }
}

open_enum! {
    /// Additional sense code and qualifier, as one big-endian 16-bit value (ASC << 8 | ASCQ).
    Asc(u16) {
        NO_ADDITIONAL_SENSE = 0x0000, "NO ADDITIONAL SENSE INFORMATION";
        FILEMARK_DETECTED = 0x0001, "FILEMARK DETECTED";
        END_OF_PARTITION_MEDIUM_DETECTED = 0x0002, "END-OF-PARTITION/MEDIUM DETECTED";
        BEGINNING_OF_PARTITION_MEDIUM_DETECTED = 0x0004, "BEGINNING-OF-PARTITION/MEDIUM DETECTED";
        END_OF_DATA_DETECTED = 0x0005, "END-OF-DATA DETECTED";
        PROGRAMMABLE_EARLY_WARNING_DETECTED = 0x0007, "PROGRAMMABLE EARLY WARNING DETECTED";
        OPERATION_IN_PROGRESS = 0x0016, "OPERATION IN PROGRESS";
        EXTENDED_COPY_INFORMATION_AVAILABLE = 0x0020, "EXTENDED COPY INFORMATION AVAILABLE";
        LOGICAL_UNIT_NOT_READY_CAUSE_NOT_REPORTABLE = 0x0400, "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE";
        LOGICAL_UNIT_NOT_READY_INITIALIZING_COMMAND_REQUIRED = 0x0402, "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED";
        LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS = 0x041b, "LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS";
        LOGICAL_UNIT_COMMUNICATION_FAILURE = 0x0800, "LOGICAL UNIT COMMUNICATION FAILURE";
        DATA_PHASE_ERROR = 0x4b00, "DATA PHASE ERROR";
        LOGICAL_UNIT_COMMUNICATION_TIMEOUT = 0x0801, "LOGICAL UNIT COMMUNICATION TIME-OUT";
        UNREACHABLE_COPY_TARGET = 0x0804, "UNREACHABLE COPY TARGET";
        WRITE_ERROR = 0x0c00, "WRITE ERROR";
        ERROR_DETECTED_BY_THIRD_PARTY_TEMPORARY_INITIATOR = 0x0d00, "ERROR DETECTED BY THIRD PARTY TEMPORARY INITIATOR";
        THIRD_PARTY_DEVICE_FAILURE = 0x0d01, "THIRD PARTY DEVICE FAILURE";
        COPY_TARGET_DEVICE_NOT_REACHABLE = 0x0d02, "COPY TARGET DEVICE NOT REACHABLE";
        INCORRECT_COPY_TARGET_DEVICE_TYPE = 0x0d03, "INCORRECT COPY TARGET DEVICE TYPE";
        COPY_TARGET_DEVICE_DATA_UNDERRUN = 0x0d04, "COPY TARGET DEVICE DATA UNDERRUN";
        COPY_TARGET_DEVICE_DATA_OVERRUN = 0x0d05, "COPY TARGET DEVICE DATA OVERRUN";
        UNRECOVERED_READ_ERROR = 0x1100, "UNRECOVERED READ ERROR";
        RECORDED_ENTITY_NOT_FOUND = 0x1400, "RECORDED ENTITY NOT FOUND";
        DEFECT_LIST_NOT_FOUND = 0x1c00, "DEFECT LIST NOT FOUND";
        MISCOMPARE_DURING_VERIFY_OPERATION = 0x1d00, "MISCOMPARE DURING VERIFY OPERATION";
        PARAMETER_LIST_LENGTH_ERROR = 0x1a00, "PARAMETER LIST LENGTH ERROR";
        INVALID_COMMAND_OPERATION_CODE = 0x2000, "INVALID COMMAND OPERATION CODE";
        LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE = 0x2100, "LOGICAL BLOCK ADDRESS OUT OF RANGE";
        INVALID_ELEMENT_ADDRESS = 0x2101, "INVALID ELEMENT ADDRESS";
        INVALID_FIELD_IN_CDB = 0x2400, "INVALID FIELD IN CDB";
        LOGICAL_UNIT_NOT_SUPPORTED = 0x2500, "LOGICAL UNIT NOT SUPPORTED";
        INVALID_FIELD_IN_PARAMETER_LIST = 0x2600, "INVALID FIELD IN PARAMETER LIST";
        PARAMETER_NOT_SUPPORTED = 0x2601, "PARAMETER NOT SUPPORTED";
        PARAMETER_VALUE_INVALID = 0x2602, "PARAMETER VALUE INVALID";
        INVALID_RELEASE_OF_PERSISTENT_RESERVATION = 0x2604, "INVALID RELEASE OF PERSISTENT RESERVATION";
        TOO_MANY_TARGET_DESCRIPTORS = 0x2606, "TOO MANY TARGET DESCRIPTORS";
        UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE = 0x2607, "UNSUPPORTED TARGET DESCRIPTOR TYPE CODE";
        TOO_MANY_SEGMENT_DESCRIPTORS = 0x2608, "TOO MANY SEGMENT DESCRIPTORS";
        UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE = 0x2609, "UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE";
        UNEXPECTED_INEXACT_SEGMENT = 0x260a, "UNEXPECTED INEXACT SEGMENT";
        INLINE_DATA_LENGTH_EXCEEDED = 0x260b, "INLINE DATA LENGTH EXCEEDED";
        INVALID_OPERATION_FOR_COPY_SOURCE_OR_DESTINATION = 0x260c, "INVALID OPERATION FOR COPY SOURCE OR DESTINATION";
        COPY_SEGMENT_GRANULARITY_VIOLATION = 0x260d, "COPY SEGMENT GRANULARITY VIOLATION";
        COPY_SOURCE_OR_COPY_DESTINATION_NOT_AUTHORIZED = 0x2615, "COPY SOURCE OR COPY DESTINATION NOT AUTHORIZED";
        WRITE_PROTECTED = 0x2700, "WRITE PROTECTED";
        LOGICAL_UNIT_SOFTWARE_WRITE_PROTECTED = 0x2702, "LOGICAL UNIT SOFTWARE WRITE PROTECTED";
        SPACE_ALLOCATION_FAILED_WRITE_PROTECT = 0x2707, "SPACE ALLOCATION FAILED WRITE PROTECT";
        NOT_READY_TO_READY_CHANGE = 0x2800, "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED";
        IMPORT_OR_EXPORT_ELEMENT_ACCESSED = 0x2801, "IMPORT OR EXPORT ELEMENT ACCESSED";
        POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED = 0x2900, "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED";
        PARAMETERS_CHANGED = 0x2a00, "PARAMETERS CHANGED";
        MODE_PARAMETERS_CHANGED = 0x2a01, "MODE PARAMETERS CHANGED";
        RESERVATIONS_PREEMPTED = 0x2a03, "RESERVATIONS PREEMPTED";
        RESERVATIONS_RELEASED = 0x2a04, "RESERVATIONS RELEASED";
        REGISTRATIONS_PREEMPTED = 0x2a05, "REGISTRATIONS PREEMPTED";
        COMMANDS_CLEARED_BY_ANOTHER_INITIATOR = 0x2f00, "COMMANDS CLEARED BY ANOTHER INITIATOR";
        INCOMPATIBLE_MEDIUM_INSTALLED = 0x3000, "INCOMPATIBLE MEDIUM INSTALLED";
        CANNOT_READ_MEDIUM_INCOMPATIBLE_FORMAT = 0x3002, "CANNOT READ MEDIUM - INCOMPATIBLE FORMAT";
        MEDIUM_FORMAT_CORRUPTED = 0x3100, "MEDIUM FORMAT CORRUPTED";
        SANITIZE_COMMAND_FAILED = 0x3103, "SANITIZE COMMAND FAILED";
        SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900, "SAVING PARAMETERS NOT SUPPORTED";
        SEQUENTIAL_POSITIONING_ERROR = 0x3b00, "SEQUENTIAL POSITIONING ERROR";
        POSITION_PAST_BEGINNING_OF_MEDIUM = 0x3b0c, "POSITION PAST BEGINNING OF MEDIUM";
        MEDIUM_DESTINATION_ELEMENT_FULL = 0x3b0d, "MEDIUM DESTINATION ELEMENT FULL";
        MEDIUM_SOURCE_ELEMENT_EMPTY = 0x3b0e, "MEDIUM SOURCE ELEMENT EMPTY";
        MEDIUM_NOT_PRESENT = 0x3a00, "MEDIUM NOT PRESENT";
        REPORTED_LUNS_DATA_HAS_CHANGED = 0x3f0e, "REPORTED LUNS DATA HAS CHANGED";
        INTERNAL_TARGET_FAILURE = 0x4400, "INTERNAL TARGET FAILURE";
        INVALID_MESSAGE_ERROR = 0x4900, "INVALID MESSAGE ERROR";
        MEDIA_LOAD_OR_EJECT_FAILED = 0x5300, "MEDIA LOAD OR EJECT FAILED";
        MEDIUM_REMOVAL_PREVENTED = 0x5302, "MEDIUM REMOVAL PREVENTED";
        INSUFFICIENT_RESOURCES = 0x5503, "INSUFFICIENT RESOURCES";
        INSUFFICIENT_REGISTRATION_RESOURCES = 0x5504, "INSUFFICIENT REGISTRATION RESOURCES";
    }
}

impl Asc {
    /// Builds the code from its two bytes.
    pub const fn new(asc: u8, ascq: u8) -> Self {
        Self(((asc as u16) << 8) | ascq as u16)
    }
    /// The ADDITIONAL SENSE CODE byte.
    pub const fn asc(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// The ADDITIONAL SENSE CODE QUALIFIER byte.
    pub const fn ascq(self) -> u8 {
        self.0 as u8
    }
}

impl Asc {
    /// T10's text for this code: the table generated from T10's list
    /// (`super::asc_table`), then the codes newer than that list which this file names;
    /// a parameter qualifier (`NN`) is filled in. None if neither knows the code.
    pub fn text(self) -> Option<std::borrow::Cow<'static, str>> {
        use super::asc_table::{ASC_ASCQ, ASC_NN};
        if let Some((_, text)) = ASC_ASCQ
            .binary_search_by_key(&self.0, |&(c, _)| c)
            .ok()
            .and_then(|i| ASC_ASCQ.get(i))
        {
            return Some((*text).into());
        }
        if let Some(name) = self.known_name() {
            return Some(name.into());
        }
        let (_, text) = ASC_NN.iter().find(|&&(asc, _)| asc == self.asc())?;
        Some(
            text.replacen("NN", &format!("{:02X}h", self.ascq()), 1)
                .into(),
        )
    }

    /// [`Asc::text`], or what SPC says a code outside T10's list is: vendor specific
    /// (ASC or ASCQ 80h-FFh) or reserved.
    pub fn describe(self) -> std::borrow::Cow<'static, str> {
        match self.text() {
            Some(t) => t,
            None if self.asc() >= 0x80 || self.ascq() >= 0x80 => "vendor specific".into(),
            None => "reserved".into(),
        }
    }
}

impl fmt::Display for Asc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}/{:02X}", self.asc(), self.ascq())
    }
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}h {}", self.0, self.name())
    }
}

open_enum! {
    /// Peripheral device type (SPC-3 Table 83).
    PeripheralDeviceType(u8) {
        DIRECT_ACCESS = 0x00, "direct access block device";
        SEQUENTIAL_ACCESS = 0x01, "sequential access (stream) device";
        PRINTER = 0x02, "printer";
        PROCESSOR = 0x03, "processor device";
        WRITE_ONCE = 0x04, "write-once device";
        CD_DVD = 0x05, "CD/DVD device";
        OPTICAL_MEMORY = 0x07, "optical memory device";
        MEDIUM_CHANGER = 0x08, "medium changer";
        STORAGE_ARRAY_CONTROLLER = 0x0c, "storage array controller";
        ENCLOSURE_SERVICES = 0x0d, "enclosure services device";
        SIMPLIFIED_DIRECT_ACCESS = 0x0e, "simplified direct access device";
        UNKNOWN = 0x1f, "unknown or no device type";
    }
}

/// How EXTENDED COPY treats a device of a given type (SPC-3 Table 37: device type specific
/// parameters in CSCD descriptors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// Block devices: 00h, 04h, 05h, 07h, 0Eh.
    Block,
    /// Sequential-access (stream) devices: 01h.
    Stream,
    /// Processor devices: 03h (treated as a stream by SPC-2/3).
    Processor,
}

impl PeripheralDeviceType {
    /// The EXTENDED COPY class of this type, or None for types a CSCD may not name.
    pub fn class(self) -> Option<DeviceClass> {
        match self.0 {
            0x00 | 0x04 | 0x05 | 0x07 | 0x0e => Some(DeviceClass::Block),
            0x01 => Some(DeviceClass::Stream),
            0x03 => Some(DeviceClass::Processor),
            _ => None,
        }
    }
}

open_enum! {
    /// Operation codes xcopyd sends or answers.
    Opcode(u8) {
        TEST_UNIT_READY = 0x00, "TEST UNIT READY";
        REWIND = 0x01, "REWIND";
        REQUEST_SENSE = 0x03, "REQUEST SENSE";
        READ_BLOCK_LIMITS = 0x05, "READ BLOCK LIMITS";
        READ_6 = 0x08, "READ(6)";
        WRITE_6 = 0x0a, "WRITE(6)";
        WRITE_FILEMARKS_6 = 0x10, "WRITE FILEMARKS(6)";
        SPACE_6 = 0x11, "SPACE(6)";
        INQUIRY = 0x12, "INQUIRY";
        VERIFY_6 = 0x13, "VERIFY(6)";
        MODE_SELECT_6 = 0x15, "MODE SELECT(6)";
        RESERVE_6 = 0x16, "RESERVE(6)";
        RELEASE_6 = 0x17, "RELEASE(6)";
        ERASE_6 = 0x19, "ERASE(6)";
        MODE_SENSE_6 = 0x1a, "MODE SENSE(6)";
        START_STOP_UNIT = 0x1b, "START STOP UNIT / LOAD UNLOAD";
        PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1e, "PREVENT ALLOW MEDIUM REMOVAL";
        READ_CAPACITY_10 = 0x25, "READ CAPACITY(10)";
        READ_10 = 0x28, "READ(10)";
        WRITE_10 = 0x2a, "WRITE(10)";
        LOCATE_10 = 0x2b, "LOCATE(10)";
        WRITE_AND_VERIFY_10 = 0x2e, "WRITE AND VERIFY(10)";
        VERIFY_10 = 0x2f, "VERIFY(10)";
        READ_POSITION = 0x34, "READ POSITION";
        SYNCHRONIZE_CACHE_10 = 0x35, "SYNCHRONIZE CACHE(10)";
        READ_DEFECT_DATA_10 = 0x37, "READ DEFECT DATA(10)";
        WRITE_SAME_10 = 0x41, "WRITE SAME(10)";
        UNMAP = 0x42, "UNMAP";
        SANITIZE = 0x48, "SANITIZE";
        MODE_SELECT_10 = 0x55, "MODE SELECT(10)";
        RESERVE_10 = 0x56, "RESERVE(10)";
        RELEASE_10 = 0x57, "RELEASE(10)";
        MODE_SENSE_10 = 0x5a, "MODE SENSE(10)";
        PERSISTENT_RESERVE_IN = 0x5e, "PERSISTENT RESERVE IN";
        PERSISTENT_RESERVE_OUT = 0x5f, "PERSISTENT RESERVE OUT";
        EXTENDED_COPY = 0x83, "EXTENDED COPY";
        RECEIVE_COPY_RESULTS = 0x84, "RECEIVE COPY RESULTS";
        READ_16 = 0x88, "READ(16)";
        COMPARE_AND_WRITE = 0x89, "COMPARE AND WRITE";
        WRITE_16 = 0x8a, "WRITE(16)";
        ORWRITE_16 = 0x8b, "ORWRITE(16)";
        WRITE_AND_VERIFY_16 = 0x8e, "WRITE AND VERIFY(16)";
        VERIFY_16 = 0x8f, "VERIFY(16)";
        PRE_FETCH_16 = 0x90, "PRE-FETCH(16)";
        SYNCHRONIZE_CACHE_16 = 0x91, "SYNCHRONIZE CACHE(16)";
        LOCATE_16 = 0x92, "LOCATE(16)";
        WRITE_SAME_16 = 0x93, "WRITE SAME(16)";
        WRITE_ATOMIC_16 = 0x9c, "WRITE ATOMIC(16)";
        SERVICE_ACTION_IN_16 = 0x9e, "SERVICE ACTION IN(16)";
        REPORT_LUNS = 0xa0, "REPORT LUNS";
        MAINTENANCE_IN = 0xa3, "MAINTENANCE IN";
        READ_12 = 0xa8, "READ(12)";
        WRITE_12 = 0xaa, "WRITE(12)";
        WRITE_AND_VERIFY_12 = 0xae, "WRITE AND VERIFY(12)";
        VERIFY_12 = 0xaf, "VERIFY(12)";
        READ_DEFECT_DATA_12 = 0xb7, "READ DEFECT DATA(12)";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc_parts_and_names() {
        let a = Asc::new(0x26, 0x0a);
        assert_eq!(a, Asc::UNEXPECTED_INEXACT_SEGMENT);
        assert_eq!((a.asc(), a.ascq()), (0x26, 0x0a));
        assert_eq!(a.to_string(), "26/0A");
        assert_eq!(Asc::new(0x7f, 0x7f).name(), "reserved or vendor specific");
        assert_eq!(
            format!("{:?}", SenseKey::COPY_ABORTED),
            "SenseKey(0x0a COPY ABORTED)"
        );
    }

    /// The generated table is T10's whole list (737 codes as of 1/03/15, less the reserved
    /// ones without text), sorted for the binary search; every name this file gives agrees
    /// with T10's text where the list has the code.
    #[test]
    fn asc_texts_come_from_t10s_list() {
        use super::super::asc_table::ASC_ASCQ;
        assert!(ASC_ASCQ.len() > 650, "{}", ASC_ASCQ.len());
        assert!(
            ASC_ASCQ.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, once each"
        );
        for &(code, text) in ASC_ASCQ {
            if let Some(name) = Asc(code).known_name() {
                assert_eq!(name, text, "{}", Asc(code));
            }
        }
        let t = |asc, ascq| Asc::new(asc, ascq).describe().into_owned();
        assert_eq!(t(0x0d, 0x02), "COPY TARGET DEVICE NOT REACHABLE");
        assert_eq!(t(0x53, 0x08), "ELEMENT STATUS UNKNOWN");
        assert_eq!(
            t(0x47, 0x7f),
            "SOME COMMANDS CLEARED BY ISCSI PROTOCOL EVENT"
        );
        // Newer than the list: named here.
        assert_eq!(
            t(0x26, 0x15),
            "COPY SOURCE OR COPY DESTINATION NOT AUTHORIZED"
        );
        // A parameter qualifier.
        assert_eq!(
            t(0x40, 0x85),
            "DIAGNOSTIC FAILURE ON COMPONENT 85h (80h-FFh)"
        );
        assert_eq!(t(0x0f, 0x00), "reserved");
        assert_eq!(t(0x80, 0x01), "vendor specific");
        assert_eq!(t(0x11, 0x99), "vendor specific");
    }

    #[test]
    fn device_classes_follow_spc3_table_37() {
        for (pdt, class) in [
            (0x00, Some(DeviceClass::Block)),
            (0x01, Some(DeviceClass::Stream)),
            (0x02, None),
            (0x03, Some(DeviceClass::Processor)),
            (0x04, Some(DeviceClass::Block)),
            (0x05, Some(DeviceClass::Block)),
            (0x07, Some(DeviceClass::Block)),
            (0x08, None),
            (0x0e, Some(DeviceClass::Block)),
            (0x1f, None),
        ] {
            assert_eq!(PeripheralDeviceType(pdt).class(), class, "pdt {pdt:#x}");
        }
    }
}
