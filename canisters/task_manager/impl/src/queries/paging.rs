//! Pages of lists (`models`, `workers`, `pipelines`, `missing_chunks`).

use task_manager_api::{Error, PageArgs};

/// Checks a page's length: 1 to [`PageArgs::MAX_LENGTH`].
pub fn checked(length: u32) -> Result<usize, Error> {
    if length == 0 || length > PageArgs::MAX_LENGTH {
        return Err(Error::InvalidRequest {
            reason: format!(
                "a page holds 1 to {} items, {length} were asked for",
                PageArgs::MAX_LENGTH
            ),
        });
    }
    Ok(length as usize)
}

/// The page of `items` that `start` and `length` select.
pub fn page<T>(items: impl Iterator<Item = T>, start: u64, length: usize) -> Vec<T> {
    items
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(length)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_cover_the_list() {
        assert!(checked(0).is_err());
        assert!(checked(PageArgs::MAX_LENGTH + 1).is_err());
        assert_eq!(page(0..10, 8, checked(5).unwrap()), vec![8, 9]);
        assert!(page(0..10, u64::MAX, 5).is_empty());
    }
}
