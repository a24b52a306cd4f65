//! NDMP v4 message codes (`ndmp4_message`) and error codes (`ndmp4_error`), as ndmp4.x
//! numbers them.

/// `ndmp4_message` codes.
pub mod code {
    pub const CONNECT_OPEN: u32 = 0x900;
    pub const CONNECT_CLIENT_AUTH: u32 = 0x901;
    pub const CONNECT_CLOSE: u32 = 0x902;
    pub const CONNECT_SERVER_AUTH: u32 = 0x903;
    pub const CONFIG_GET_HOST_INFO: u32 = 0x100;
    pub const CONFIG_GET_CONNECTION_TYPE: u32 = 0x102;
    pub const CONFIG_GET_AUTH_ATTR: u32 = 0x103;
    pub const CONFIG_GET_BUTYPE_INFO: u32 = 0x104;
    pub const CONFIG_GET_FS_INFO: u32 = 0x105;
    pub const CONFIG_GET_TAPE_INFO: u32 = 0x106;
    pub const CONFIG_GET_SCSI_INFO: u32 = 0x107;
    pub const CONFIG_GET_SERVER_INFO: u32 = 0x108;
    pub const CONFIG_SET_EXT_LIST: u32 = 0x109;
    pub const CONFIG_GET_EXT_LIST: u32 = 0x10a;
    pub const SCSI_OPEN: u32 = 0x200;
    pub const SCSI_CLOSE: u32 = 0x201;
    pub const SCSI_GET_STATE: u32 = 0x202;
    pub const SCSI_RESET_DEVICE: u32 = 0x204;
    pub const SCSI_EXECUTE_CDB: u32 = 0x206;
    pub const TAPE_OPEN: u32 = 0x300;
    pub const TAPE_CLOSE: u32 = 0x301;
    pub const TAPE_GET_STATE: u32 = 0x302;
    pub const TAPE_MTIO: u32 = 0x303;
    pub const TAPE_WRITE: u32 = 0x304;
    pub const TAPE_READ: u32 = 0x305;
    pub const TAPE_EXECUTE_CDB: u32 = 0x307;
    pub const DATA_GET_STATE: u32 = 0x400;
    pub const DATA_START_BACKUP: u32 = 0x401;
    pub const DATA_START_RECOVER: u32 = 0x402;
    pub const DATA_ABORT: u32 = 0x403;
    pub const DATA_GET_ENV: u32 = 0x404;
    pub const DATA_STOP: u32 = 0x407;
    pub const DATA_LISTEN: u32 = 0x409;
    pub const DATA_CONNECT: u32 = 0x40a;
    pub const DATA_START_RECOVER_FILEHIST: u32 = 0x40b;
    pub const NOTIFY_DATA_HALTED: u32 = 0x501;
    pub const NOTIFY_CONNECTION_STATUS: u32 = 0x502;
    pub const NOTIFY_MOVER_HALTED: u32 = 0x503;
    pub const NOTIFY_MOVER_PAUSED: u32 = 0x504;
    pub const NOTIFY_DATA_READ: u32 = 0x505;
    pub const LOG_FILE: u32 = 0x602;
    pub const LOG_MESSAGE: u32 = 0x603;
    pub const MOVER_GET_STATE: u32 = 0xa00;
    pub const MOVER_LISTEN: u32 = 0xa01;
    pub const MOVER_CONTINUE: u32 = 0xa02;
    pub const MOVER_ABORT: u32 = 0xa03;
    pub const MOVER_STOP: u32 = 0xa04;
    pub const MOVER_SET_WINDOW: u32 = 0xa05;
    pub const MOVER_READ: u32 = 0xa06;
    pub const MOVER_CLOSE: u32 = 0xa07;
    pub const MOVER_SET_RECORD_SIZE: u32 = 0xa08;
    pub const MOVER_CONNECT: u32 = 0xa09;
}

/// `ndmp4_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub u32);

impl Error {
    pub const NO_ERR: Self = Self(0);
    pub const NOT_SUPPORTED: Self = Self(1);
    pub const DEVICE_BUSY: Self = Self(2);
    pub const DEVICE_OPENED: Self = Self(3);
    pub const NOT_AUTHORIZED: Self = Self(4);
    pub const PERMISSION: Self = Self(5);
    pub const DEV_NOT_OPEN: Self = Self(6);
    pub const IO: Self = Self(7);
    pub const TIMEOUT: Self = Self(8);
    pub const ILLEGAL_ARGS: Self = Self(9);
    pub const NO_TAPE_LOADED: Self = Self(10);
    pub const WRITE_PROTECT: Self = Self(11);
    pub const EOF: Self = Self(12);
    pub const EOM: Self = Self(13);
    pub const FILE_NOT_FOUND: Self = Self(14);
    pub const BAD_FILE: Self = Self(15);
    pub const NO_DEVICE: Self = Self(16);
    pub const NO_BUS: Self = Self(17);
    pub const XDR_DECODE: Self = Self(18);
    pub const ILLEGAL_STATE: Self = Self(19);
    pub const UNDEFINED: Self = Self(20);
    pub const XDR_ENCODE: Self = Self(21);
    pub const NO_MEM: Self = Self(22);
    pub const CONNECT: Self = Self(23);
    pub const SEQUENCE_NUM: Self = Self(24);
    pub const READ_IN_PROGRESS: Self = Self(25);
    pub const PRECONDITION: Self = Self(26);
    pub const CLASS_NOT_SUPPORTED: Self = Self(27);
    pub const VERSION_NOT_SUPPORTED: Self = Self(28);
}
