//! What the runner needs from the image store, as a trait: resolve a
//! reference to an image (its config and its unpacked layer directories),
//! and hold an image while a container uses it so `kiln rmi` refuses to
//! delete it. The root package implements it over kiln-registry (pulling
//! missing images); tests use a fake.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as the user wrote it (shown by `ps`).
    pub name: String,
    /// The image id: its config digest (`sha256:…`).
    pub id: String,
    /// What the store's record points at (manifest or index digest): the
    /// key of a hold.
    pub target: String,
    pub config: ImageConfiguration,
    /// Unpacked layer directories, bottom layer first.
    pub layer_dirs: Vec<PathBuf>,
}

/// Errors of an [`ImageSource`], carried as a boxed cause so the runner
/// does not depend on a particular store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {reference}")]
    NotFound { reference: String },
    #[error("cannot get the image {reference}")]
    Store {
        reference: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The image store as the runner sees it.
pub trait ImageSource: Send + Sync {
    /// Finds (pulling if needed, when `pull` is true) and unpacks an image.
    fn resolve(&self, reference: &str, pull: bool) -> Result<ResolvedImage, ImageError>;

    /// Re-finds an image by id for a container that is started again
    /// (its layers may have been unpacked again since).
    fn by_id(&self, id: &str) -> Result<ResolvedImage, ImageError>;

    /// Records that `holder` (`container:<id>`) uses the image whose
    /// record is `target`, so `rmi` refuses it.
    fn hold(&self, holder: &str, target: &str) -> Result<(), ImageError>;

    /// Drops every hold of `holder` (the container is removed).
    fn release(&self, holder: &str) -> Result<(), ImageError>;
}

/// The image store of a kiln root, as an [`ImageSource`]. Images missing
/// from the store are pulled by `pull` when one is given.
pub struct StoreImages {
    store: kiln_registry::Store,
    #[allow(clippy::type_complexity)]
    pull: Option<Box<dyn Fn(&str) -> Result<(), ImageError> + Send + Sync>>,
}

impl StoreImages {
    pub fn new(store: kiln_registry::Store) -> StoreImages {
        StoreImages { store, pull: None }
    }

    /// Sets how a missing image is pulled into the store.
    pub fn with_pull(
        mut self,
        pull: impl Fn(&str) -> Result<(), ImageError> + Send + Sync + 'static,
    ) -> StoreImages {
        self.pull = Some(Box::new(pull));
        self
    }

    fn store_err(reference: &str, e: impl std::error::Error + Send + Sync + 'static) -> ImageError {
        ImageError::Store {
            reference: reference.to_string(),
            source: Box::new(e),
        }
    }

    fn ready(&self, name: &str, image: kiln_registry::Image) -> Result<ResolvedImage, ImageError> {
        let layer_dirs = self
            .store
            .unpack_image(&image)
            .map_err(|e| Self::store_err(name, e))?;
        Ok(ResolvedImage {
            name: name.to_string(),
            id: image.id().to_string(),
            target: image.target.digest().to_string(),
            config: image.config,
            layer_dirs,
        })
    }
}

impl ImageSource for StoreImages {
    fn resolve(&self, reference: &str, pull: bool) -> Result<ResolvedImage, ImageError> {
        match self.store.find_image(reference) {
            Ok(image) => self.ready(reference, image),
            Err(kiln_registry::StoreError::ImageNotFound { .. }) => {
                let Some(puller) = self.pull.as_ref().filter(|_| pull) else {
                    return Err(ImageError::NotFound {
                        reference: reference.to_string(),
                    });
                };
                puller(reference)?;
                let image = self
                    .store
                    .find_image(reference)
                    .map_err(|e| Self::store_err(reference, e))?;
                self.ready(reference, image)
            }
            Err(e) => Err(Self::store_err(reference, e)),
        }
    }

    fn by_id(&self, id: &str) -> Result<ResolvedImage, ImageError> {
        match self.store.find_image(id) {
            Ok(image) => self.ready(id, image),
            Err(kiln_registry::StoreError::ImageNotFound { .. }) => Err(ImageError::NotFound {
                reference: id.to_string(),
            }),
            Err(e) => Err(Self::store_err(id, e)),
        }
    }

    fn hold(&self, holder: &str, target: &str) -> Result<(), ImageError> {
        let digest: oci_spec::image::Digest = target
            .parse()
            .map_err(|e: oci_spec::OciSpecError| Self::store_err(target, e))?;
        self.store
            .hold(holder, &digest)
            .map_err(|e| Self::store_err(target, e))
    }

    fn release(&self, holder: &str) -> Result<(), ImageError> {
        self.store
            .release(holder)
            .map(|_| ())
            .map_err(|e| Self::store_err(holder, e))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Images by name, with holds recorded as (holder, target).
    #[derive(Default)]
    pub struct FakeImages {
        pub images: HashMap<String, ResolvedImage>,
        pub holds: Mutex<Vec<(String, String)>>,
    }

    impl FakeImages {
        pub fn with(image: ResolvedImage) -> FakeImages {
            let mut images = HashMap::new();
            images.insert(image.name.clone(), image);
            FakeImages {
                images,
                holds: Mutex::default(),
            }
        }
    }

    impl ImageSource for FakeImages {
        fn resolve(&self, reference: &str, _pull: bool) -> Result<ResolvedImage, ImageError> {
            self.images
                .get(reference)
                .cloned()
                .ok_or_else(|| ImageError::NotFound {
                    reference: reference.to_string(),
                })
        }

        fn by_id(&self, id: &str) -> Result<ResolvedImage, ImageError> {
            self.images
                .values()
                .find(|i| i.id == id)
                .cloned()
                .ok_or_else(|| ImageError::NotFound {
                    reference: id.to_string(),
                })
        }

        fn hold(&self, holder: &str, target: &str) -> Result<(), ImageError> {
            self.holds
                .lock()
                .unwrap()
                .push((holder.to_string(), target.to_string()));
            Ok(())
        }

        fn release(&self, holder: &str) -> Result<(), ImageError> {
            self.holds.lock().unwrap().retain(|h| h.0 != holder);
            Ok(())
        }
    }
}
