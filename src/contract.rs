//! The report contract's closed sets of names (finding kinds, verdict
//! statuses, policy decisions, ...) as enums: the code matches on variants,
//! and the one place a variant becomes its contract string is here.

/// Declares a closed set of contract names: an enum with `as_str`,
/// `Display`, `Serialize` (as its contract string), `JsonSchema` (the
/// set of strings) and `ALL`.
///
/// Declare the variants in the ascending order of their strings: the
/// derived `Ord` then sorts exactly as the strings did (reports are sorted
/// by these keys, and must stay byte-identical); [`check_order`] tests it.
macro_rules! contract_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The contract's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // `pad`, not `write_str`: table columns set a width.
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        // In the report's JSON Schema: one of the contract strings.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": [$($text),+] })
            }
        }
    };
}

pub(crate) use contract_enum;

/// Panics unless `all` (an enum's `ALL`) sorts by its strings exactly as
/// by its variants, and no two variants share a string.
#[cfg(test)]
pub(crate) fn check_order<T: Ord + Copy + std::fmt::Debug>(
    all: &[T],
    name: impl Fn(T) -> &'static str,
) {
    for w in all.windows(2) {
        assert!(
            name(w[0]) < name(w[1]) && w[0] < w[1],
            "{:?} ({}) must come before {:?} ({})",
            w[0],
            name(w[0]),
            w[1],
            name(w[1])
        );
    }
}
