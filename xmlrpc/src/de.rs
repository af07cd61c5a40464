//! serde: a [`Value`] to any `Deserialize` type.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::ser::Error;
use crate::value::Value;

/// Deserializes `v` into `T`.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    T::deserialize(v)
}

impl IntoDeserializer<'_, Error> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Int(i) => visitor.visit_i32(i),
            Value::I8(i) => visitor.visit_i64(i),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::String(s) => visitor.visit_string(s),
            Value::Double(d) => visitor.visit_f64(d),
            Value::DateTime(dt) => visitor.visit_string(dt.to_string()),
            Value::Base64(b) => visitor.visit_byte_buf(b),
            Value::Struct(m) => {
                let mut md = MapDeserializer::new(m.into_iter());
                let v = visitor.visit_map(&mut md)?;
                md.end()?;
                Ok(v)
            }
            Value::Array(a) => {
                let mut sd = SeqDeserializer::new(a.into_iter());
                let v = visitor.visit_seq(&mut sd)?;
                sd.end()?;
                Ok(v)
            }
            Value::Nil => visitor.visit_unit(),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Nil => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Base64(b) => visitor.visit_byte_buf(b),
            Value::String(s) => visitor.visit_byte_buf(s.into_bytes()),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Struct(mut m) if m.len() == 1 => {
                let (k, v) = m.remove(0);
                visitor.visit_enum(EnumAccess(k, v))
            }
            other => {
                Err(Error(format!("expected an enum (a string or a one-member struct), got {}", other.type_name())))
            }
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct EnumAccess(String, Value);

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = Error;
    type Variant = Value;
    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Value), Error> {
        let k: de::value::StringDeserializer<Error> = self.0.into_deserializer();
        Ok((seed.deserialize(k)?, self.1))
    }
}

impl<'de> de::VariantAccess<'de> for Value {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
