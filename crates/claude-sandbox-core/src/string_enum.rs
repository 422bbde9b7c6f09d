/// Defines a closed set of words a user can write (`--runtime gvisor`), with parsing that names the
/// setting and lists the choices on a typo.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every accepted spelling, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            pub fn parse(
                field: $crate::error::Field,
                value: &str,
            ) -> Result<Self, $crate::error::ConfigError> {
                match value {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err($crate::error::ConfigError::invalid(
                        field,
                        value,
                        "is not one of the choices",
                        format!("use one of: {}", Self::NAMES.join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;
