//! The input a cached value was last made from.
//!
//! The checker asks the model millions of questions, and its exhaustive
//! bounds repeat most of each question from one case to the next: the same
//! bindings, the same folios, the same RMP runs. Each part the model
//! builds from such an input (the sorted bindings, a page cache, a table)
//! is kept with the input it came from, and the same input again is
//! answered by what it gave. This type is that input: a list and the
//! scalars that go with it, or nothing when no value is held.

/// A list of `T` and a key `K` of scalars, as last given to
/// [`LastInput::set`], or nothing.
#[derive(Debug, Clone)]
pub(crate) struct LastInput<T, K> {
    items: Vec<T>,
    /// `None`: no value is held (at first, or after [`LastInput::forget`]).
    key: Option<K>,
}

impl<T, K> Default for LastInput<T, K> {
    fn default() -> Self {
        LastInput {
            items: Vec::new(),
            key: None,
        }
    }
}

impl<T: Clone + PartialEq, K: Copy + PartialEq> LastInput<T, K> {
    /// Whether a value is held and was made from exactly `items` and `key`.
    #[inline]
    pub(crate) fn is(&self, items: &[T], key: K) -> bool {
        self.key == Some(key) && self.items == items
    }

    /// The value now held was made from `items` and `key`.
    pub(crate) fn set(&mut self, items: &[T], key: K) {
        self.items.clear();
        self.items.extend_from_slice(items);
        self.key = Some(key);
    }

    /// No value is held: it is being rebuilt in place, and a refused
    /// input would leave it half made.
    pub(crate) fn forget(&mut self) {
        self.key = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_held_from_set_to_forget_and_only_as_given() {
        let mut last: LastInput<u8, u64> = LastInput::default();
        // Nothing is held at first, not even the empty list.
        assert!(!last.is(&[], 0));
        last.set(&[1, 2], 7);
        assert!(last.is(&[1, 2], 7));
        assert!(!last.is(&[1, 2], 8));
        assert!(!last.is(&[2, 1], 7));
        assert!(!last.is(&[1], 7));
        last.forget();
        assert!(!last.is(&[1, 2], 7));
        last.set(&[], 0);
        assert!(last.is(&[], 0));
    }
}
