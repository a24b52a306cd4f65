//! A virtual tape library (DESIGN.md "Tape library"): an SMC-3 medium changer whose robot
//! moves cartridges, identified by barcode, between storage slots, import/export slots and
//! its drives. Cartridges are SIMH images `BARCODE.tap` in the media directory; the element
//! map (which cartridge is where) lives in the state directory and is replaced atomically
//! on every move ([`store`]), so a restart — or a crash in the middle of a move — finds
//! each cartridge in exactly one element.
//!
//! At start-up every image the map places is put back where it was (a cartridge in a drive
//! is loaded into it again); an image the map does not place goes to the lowest free
//! storage slot, in barcode order; a mapped cartridge whose image is gone is forgotten. At
//! run time, an image that appears in the media directory is noticed by INITIALIZE ELEMENT
//! STATUS and lands in a free import/export slot, placed by an operator (IMPEXP=1), with
//! IMPORT OR EXPORT ELEMENT ACCESSED (28/01) raised for every nexus.
//!
//! A move out of a drive unloads the cartridge first, as libraries with auto-unload do
//! (mhvtl, IBM and HP LTO libraries) — unless the drive's medium removal is prevented
//! (the st driver prevents it while /dev/nst* is open), which is MEDIUM REMOVAL PREVENTED
//! (05/53/02) and nothing moves.

pub mod cartridge_store;
pub mod changer;
pub mod config;
pub mod drive;
pub mod elements;
pub mod loaded;
pub mod logs;
pub mod lto;
pub mod mam;
pub mod store;

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use self::drive::{DriveState, LibraryDrive, Loaded};
use self::elements::{Cartridge, ElementMap, Layout, MoveError};
use self::mam::Mam;
use self::store::Store;
use crate::buf::Rings;
use crate::device::attention::AttentionLog;
use crate::scsi::smc::{ElementStatus, ElementType};
use crate::scsi::Asc;

pub use self::config::LibraryConfig;

/// An open library: its drives, its element map and the files behind them.
#[derive(Debug)]
pub struct Library {
    config: LibraryConfig,
    layout: Layout,
    drives: Vec<Arc<LibraryDrive>>,
    state: Mutex<State>,
    /// The changer's own unit attentions (28/01).
    attention: AttentionLog,
    /// The rings its cartridges' O_DIRECT appends borrow.
    rings: Arc<Rings>,
}

#[derive(Debug)]
struct State {
    map: ElementMap,
    store: Store,
    /// PREVENT ALLOW MEDIUM REMOVAL: an operator may not take cartridges out of the
    /// import/export slots.
    prevent: bool,
    /// The LUN each drive is served as, for DT element descriptors (LU VALID).
    luns: Vec<Option<u8>>,
}

impl Library {
    /// Opens the library's store (locking it for this process), rebuilds the element map
    /// from the saved one and the images in the media directory, loads the cartridges the
    /// map has in drives, and saves the map. Returns what had to be repaired, for the
    /// caller to log.
    pub fn open(
        config: LibraryConfig,
        drives: Vec<Arc<LibraryDrive>>,
    ) -> io::Result<(Self, Vec<String>)> {
        Self::open_in(config, drives, Arc::default())
    }

    /// [`Library::open`], the cartridges' O_DIRECT appends borrowing their ring from
    /// `rings` (the process's, shared with the copy engines).
    pub fn open_in(
        config: LibraryConfig,
        drives: Vec<Arc<LibraryDrive>>,
        rings: Arc<Rings>,
    ) -> io::Result<(Self, Vec<String>)> {
        let layout = Layout {
            slots: config.slots,
            import_export: config.import_export,
            drives: drives.len() as u16,
        };
        let (store, text) = Store::open(
            &config.name,
            &config.state_dir,
            &config.media,
            config.object.as_ref(),
        )?;
        let (mut map, mut warnings) = match text {
            Some(t) => ElementMap::decode(&t, layout),
            None => (ElementMap::new(layout), Vec::new()),
        };
        let images = store.scan()?;
        let gone: Vec<(u16, String)> = map
            .occupied()
            .filter(|(_, c)| !images.contains(&c.barcode))
            .map(|(a, c)| (a, c.barcode.clone()))
            .collect();
        for (address, barcode) in gone {
            map.remove(address);
            warnings.push(format!(
                "{barcode}: image gone, removed from {address:#06x}"
            ));
        }
        place_new(
            &mut map,
            &images,
            ElementType::Storage,
            false,
            &mut warnings,
        );
        let library = Self {
            layout,
            drives,
            state: Mutex::new(State {
                map,
                store,
                prevent: false,
                luns: vec![None; usize::from(layout.drives)],
            }),
            attention: AttentionLog::default(),
            config,
            rings,
        };
        library.load_drives(&mut warnings);
        {
            let st = library.lock();
            st.store.save(&st.map.encode(&library.config.name))?;
        }
        Ok((library, warnings))
    }

    pub fn config(&self) -> &LibraryConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn drives(&self) -> &[Arc<LibraryDrive>] {
        &self.drives
    }

    /// The element map as it is now.
    pub fn map(&self) -> ElementMap {
        self.lock().map.clone()
    }

    /// The element map file.
    pub fn map_path(&self) -> PathBuf {
        self.lock().store.map_path().to_path_buf()
    }

    /// The media directory.
    pub fn media(&self) -> PathBuf {
        self.lock().store.media().to_path_buf()
    }

    /// Records the LUN each drive is served as (None: not a LUN, or above 7), for the
    /// LU VALID field of READ ELEMENT STATUS.
    pub fn set_drive_luns(&self, luns: &[Option<u64>]) {
        let mut st = self.lock();
        for (slot, lun) in st.luns.iter_mut().zip(luns) {
            *slot = lun.and_then(|l| u8::try_from(l).ok()).filter(|&l| l < 8);
        }
    }

    /// MOVE MEDIUM: `transport` 0 or the one medium transport.
    pub fn move_medium(
        &self,
        transport: u16,
        source: u16,
        destination: u16,
    ) -> Result<(), MoveError> {
        let mut st = self.lock();
        st.map.check_transport(transport)?;
        st.map.check_move(source, destination)?;
        if source == destination {
            return Ok(());
        }
        let mut next = st.map.clone();
        next.apply_move(source, destination);
        self.relocate(&mut st, &[(source, destination)], next)
    }

    /// EXCHANGE MEDIUM: `source` to `first`, what was in `first` to `second`.
    pub fn exchange_medium(
        &self,
        transport: u16,
        source: u16,
        first: u16,
        second: u16,
    ) -> Result<(), MoveError> {
        let mut st = self.lock();
        st.map.check_transport(transport)?;
        st.map.check_exchange(source, first, second)?;
        let mut next = st.map.clone();
        next.apply_exchange(source, first, second);
        self.relocate(&mut st, &[(source, first), (first, second)], next)
    }

    /// INITIALIZE ELEMENT STATUS: looks at the media directory again. Images that appeared
    /// land in free import/export slots (placed by an operator), or, in a library without
    /// any, in free storage slots; cartridges whose image is gone leave their slot (a
    /// cartridge in a drive keeps its open image). Raises 28/01 when an import/export slot
    /// changed, 28/00 when storage slots did.
    pub fn initialize(&self) -> Result<Vec<String>, MoveError> {
        let mut st = self.lock();
        let images = st
            .store
            .scan()
            .map_err(|e| MoveError::Internal(e.to_string()))?;
        let mut next = st.map.clone();
        let mut warnings = Vec::new();
        let gone: Vec<u16> = next
            .occupied()
            .filter(|&(a, c)| self.layout.drive_index(a).is_none() && !images.contains(&c.barcode))
            .map(|(a, _)| a)
            .collect();
        let mut import_export = gone
            .iter()
            .any(|&a| self.layout.element_type(a) == Some(ElementType::ImportExport));
        for a in gone {
            next.remove(a);
        }
        // A library without import/export elements takes new cartridges in its storage
        // slots, as an operator fills a magazine with the door open.
        let magazine = self.layout.import_export == 0;
        let placed = if magazine {
            place_new(
                &mut next,
                &images,
                ElementType::Storage,
                false,
                &mut warnings,
            )
        } else {
            place_new(
                &mut next,
                &images,
                ElementType::ImportExport,
                true,
                &mut warnings,
            )
        };
        import_export |= placed && !magazine;
        if next != st.map {
            self.save(&st, &next)?;
            st.map = next;
        }
        if import_export {
            self.attention.raise(Asc::IMPORT_OR_EXPORT_ELEMENT_ACCESSED);
        } else if placed {
            self.attention.raise(Asc::NOT_READY_TO_READY_CHANGE);
        }
        Ok(warnings)
    }

    /// PREVENT ALLOW MEDIUM REMOVAL for the import/export slots.
    pub fn set_prevent(&self, prevent: bool) {
        self.lock().prevent = prevent;
    }

    pub fn prevented(&self) -> bool {
        self.lock().prevent
    }

    /// Every element as READ ELEMENT STATUS reports it.
    pub fn elements(&self) -> Vec<ElementStatus> {
        let st = self.lock();
        let mut out = vec![ElementStatus {
            element_type: Some(ElementType::MediumTransport),
            address: elements::TRANSPORT,
            ..ElementStatus::default()
        }];
        let with = |t: ElementType, address: u16| {
            let c = st.map.get(address);
            ElementStatus {
                element_type: Some(t),
                address,
                full: c.is_some(),
                access: true,
                source: c.and_then(|c| c.source),
                medium_type: if c.is_some() {
                    ElementStatus::DATA_MEDIUM
                } else {
                    0
                },
                volume_tag: c.map(|c| c.barcode.clone()),
                ..ElementStatus::default()
            }
        };
        for a in self.layout.addresses(ElementType::ImportExport) {
            out.push(ElementStatus {
                placed_by_operator: st.map.get(a).is_some_and(|c| c.by_operator),
                import_enabled: true,
                export_enabled: !st.prevent,
                ..with(ElementType::ImportExport, a)
            });
        }
        for (i, drive) in self.drives.iter().enumerate() {
            let a = self.layout.drive_address(i);
            let ready = matches!(drive.state(), DriveState::Full { ready: true, .. });
            out.push(ElementStatus {
                access: !ready,
                lun: st.luns.get(i).copied().flatten(),
                identifier: drive.config().designators.first().cloned(),
                ..with(ElementType::DataTransfer, a)
            });
        }
        for a in self.layout.addresses(ElementType::Storage) {
            out.push(with(ElementType::Storage, a));
        }
        out
    }

    /// Where the cartridge `barcode` is.
    pub fn locate(&self, barcode: &str) -> Option<u16> {
        self.lock().map.find(barcode)
    }

    pub(crate) fn attention(&self) -> &AttentionLog {
        &self.attention
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, st: &State, next: &ElementMap) -> Result<(), MoveError> {
        st.store.save(&next.encode(&self.config.name)).map_err(|e| {
            tracing::error!(library = %self.config.name, error = %e, "element map not saved");
            MoveError::Internal(e.to_string())
        })
    }

    /// Opens the image of `barcode` for drive `index`.
    fn open_cartridge(&self, st: &State, index: usize, barcode: &str) -> Result<Loaded, MoveError> {
        let drive = self
            .drives
            .get(index)
            .ok_or_else(|| MoveError::Internal(format!("no drive {index}")))?;
        let image = st.store.image(barcode);
        let mam = match st.store.cartridges() {
            Some(g) => Mam::load_from_store(Arc::clone(g), barcode),
            None => Mam::load(Mam::path_of(&image)),
        };
        let mut mam = mam.map_err(|e| MoveError::LoadFailed(format!("{barcode}: {e}")))?;
        let (config, access) = drive.cartridge_config(barcode, mam.capacity());
        let name = format!("{}:{barcode}", drive.config().name);
        mam.count_load();
        if let Err(e) = mam.save() {
            tracing::warn!(library = %self.config.name, %barcode, "load count not saved: {e}");
        }
        let medium_type = drive.medium_type(barcode);
        match st.store.open_object(barcode, !config.write_protect) {
            Some(backing) => backing.and_then(|b| {
                Loaded::open_single(name, barcode, image, config, access, mam, medium_type, b)
            }),
            None => {
                let rings = Arc::clone(&self.rings);
                Loaded::open(
                    name,
                    barcode,
                    image,
                    config,
                    access,
                    mam,
                    medium_type,
                    rings,
                )
            }
        }
        .map_err(|e| MoveError::LoadFailed(format!("{barcode}: {e}")))
    }

    /// Carries out `moves` (element pairs, already checked, whose result is `next`):
    /// unloads the drives they take from, opens the cartridges for the drives they go to,
    /// saves `next`, then puts the cartridges in. Any failure before the save puts back
    /// what was taken out, and the map stays as it was.
    fn relocate(
        &self,
        st: &mut MutexGuard<'_, State>,
        moves: &[(u16, u16)],
        next: ElementMap,
    ) -> Result<(), MoveError> {
        let mut taken: Vec<(usize, String)> = Vec::new();
        for &(from, _) in moves {
            let Some(i) = self.layout.drive_index(from) else {
                continue;
            };
            let drive = &self.drives[i];
            match drive.take() {
                Ok(Some(loaded)) => taken.push((i, loaded.barcode.clone())),
                Ok(None) => {}
                Err(sense) => {
                    self.put_back(st, &taken);
                    return Err(if sense.asc == Asc::MEDIUM_REMOVAL_PREVENTED {
                        MoveError::RemovalPrevented(from)
                    } else {
                        MoveError::LoadFailed(format!("{}: unload: {sense}", drive.name_str()))
                    });
                }
            }
        }
        let mut opened: Vec<(usize, Loaded)> = Vec::new();
        for &(_, to) in moves {
            let Some(j) = self.layout.drive_index(to) else {
                continue;
            };
            let Some(barcode) = next.get(to).map(|c| c.barcode.clone()) else {
                continue;
            };
            match self.open_cartridge(st, j, &barcode) {
                Ok(l) => opened.push((j, l)),
                Err(e) => {
                    drop(opened);
                    self.put_back(st, &taken);
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.save(st, &next) {
            drop(opened);
            self.put_back(st, &taken);
            return Err(e);
        }
        st.map = next;
        for (j, loaded) in opened {
            self.drives[j].insert(loaded);
        }
        Ok(())
    }

    /// Loads cartridges taken out of drives back into them (a move that failed).
    fn put_back(&self, st: &State, taken: &[(usize, String)]) {
        for (i, barcode) in taken {
            match self.open_cartridge(st, *i, barcode) {
                Ok(l) => self.drives[*i].insert(l),
                Err(e) => {
                    tracing::error!(library = %self.config.name, %barcode, "not reloaded: {e}")
                }
            }
        }
    }

    /// Start-up: loads what the map has in drives; a cartridge that cannot be opened goes
    /// back to where it came from, or the lowest free storage slot.
    fn load_drives(&self, warnings: &mut Vec<String>) {
        let mut st = self.lock();
        for i in 0..self.drives.len() {
            let address = self.layout.drive_address(i);
            let Some(c) = st.map.get(address).cloned() else {
                continue;
            };
            match self.open_cartridge(&st, i, &c.barcode) {
                Ok(l) => self.drives[i].insert(l),
                Err(e) => {
                    st.map.remove(address);
                    let back = c
                        .source
                        .filter(|&s| {
                            st.map.get(s).is_none() && self.layout.drive_index(s).is_none()
                        })
                        .or_else(|| st.map.lowest_free(ElementType::Storage));
                    match back {
                        Some(to) => {
                            st.map.place(
                                to,
                                Cartridge {
                                    source: Some(address),
                                    ..c.clone()
                                },
                            );
                            warnings.push(format!("{}: {e}; moved to {to:#06x}", c.barcode));
                        }
                        None => warnings.push(format!("{}: {e}; no free slot", c.barcode)),
                    }
                }
            }
        }
    }
}

impl LibraryDrive {
    fn name_str(&self) -> &str {
        &self.config().name
    }
}

/// Places the images `images` the map does not have, in barcode order, in the lowest
/// free elements of `kind`. Returns whether any was placed.
fn place_new(
    map: &mut ElementMap,
    images: &BTreeSet<String>,
    kind: ElementType,
    by_operator: bool,
    warnings: &mut Vec<String>,
) -> bool {
    let mut placed = false;
    for barcode in images {
        if map.find(barcode).is_some() {
            continue;
        }
        match map.lowest_free(kind) {
            Some(a) => {
                placed |= map.place(
                    a,
                    Cartridge {
                        by_operator,
                        ..Cartridge::new(barcode.clone())
                    },
                );
            }
            None => warnings.push(format!("{barcode}: no free {} element", kind.name())),
        }
    }
    placed
}

#[cfg(test)]
mod tests;
