//! Just enough of the protobuf wire format to list an ONNX model's
//! initializers without copying them.
//!
//! An ONNX file is a `ModelProto`; its `graph` (field 7) is a `GraphProto`
//! whose `initializer`s (field 5) are `TensorProto`s. Of a tensor this reads
//! `dims` (1), `data_type` (2), `float_data` (4), `name` (8), `raw_data` (9),
//! `external_data` (13) and `data_location` (14), and skips every other
//! field by its wire type. Tensor bytes are borrowed from the input, so
//! listing the initializers of a 500 MB stage allocates only their table.

use super::weights::WeightsError;

/// `TensorProto.DataType.FLOAT`.
pub const DATA_TYPE_FLOAT: i32 = 1;

/// Where an initializer's values are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorData<'a> {
    /// `raw_data`: little-endian bytes.
    Raw(&'a [u8]),
    /// `float_data`: packed little-endian `f32`s (the same layout as raw).
    PackedFloats(&'a [u8]),
    /// No values in the file (empty tensor, or data stored outside it).
    None,
}

/// One initializer of the graph, borrowing the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initializer<'a> {
    pub name: &'a str,
    pub dims: Vec<i64>,
    pub data_type: i32,
    pub data: TensorData<'a>,
    /// `data_location == EXTERNAL` or `external_data` present.
    pub external: bool,
}

/// The initializers of the model's main graph, in file order.
pub fn initializers(model: &[u8]) -> Result<Vec<Initializer<'_>>, WeightsError> {
    let mut graph = None;
    let mut reader = Reader::new(model, 0);
    while let Some((field, value)) = reader.next_field()? {
        if let (7, Value::Bytes(bytes, offset)) = (field, value) {
            graph = Some((bytes, offset));
        }
    }
    let (graph, offset) = graph.ok_or_else(|| WeightsError::Protobuf {
        offset: model.len(),
        message: "the model has no graph (ModelProto field 7)".into(),
    })?;
    let mut out = Vec::new();
    let mut reader = Reader::new(graph, offset);
    while let Some((field, value)) = reader.next_field()? {
        if let (5, Value::Bytes(bytes, offset)) = (field, value) {
            out.push(tensor(bytes, offset)?);
        }
    }
    Ok(out)
}

fn tensor(bytes: &[u8], base: usize) -> Result<Initializer<'_>, WeightsError> {
    let mut init = Initializer {
        name: "",
        dims: Vec::new(),
        data_type: 0,
        data: TensorData::None,
        external: false,
    };
    let mut reader = Reader::new(bytes, base);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Varint(v)) => init.dims.push(v as i64),
            (1, Value::Bytes(packed, offset)) => {
                let mut dims = Reader::new(packed, offset);
                while !dims.at_end() {
                    init.dims.push(dims.varint()? as i64);
                }
            }
            (2, Value::Varint(v)) => init.data_type = v as i32,
            (4, Value::Bytes(packed, _)) => init.data = TensorData::PackedFloats(packed),
            (4, Value::Fixed32(offset)) => {
                return Err(WeightsError::Protobuf {
                    offset,
                    message: "unpacked float_data is not supported".into(),
                })
            }
            (8, Value::Bytes(name, offset)) => {
                init.name = std::str::from_utf8(name).map_err(|_| WeightsError::Protobuf {
                    offset,
                    message: "tensor name is not UTF-8".into(),
                })?;
            }
            (9, Value::Bytes(raw, _)) => init.data = TensorData::Raw(raw),
            (13, Value::Bytes(..)) => init.external = true,
            (14, Value::Varint(location)) => init.external |= location == 1,
            _ => {}
        }
    }
    Ok(init)
}

enum Value<'a> {
    Varint(u64),
    /// A length-delimited field and the absolute offset of its first byte.
    Bytes(&'a [u8], usize),
    /// A 32-bit field and the absolute offset of its first byte.
    Fixed32(usize),
    Fixed64,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Absolute offset of `bytes[0]` in the file, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn error(&self, message: &str) -> WeightsError {
        WeightsError::Protobuf {
            offset: self.base + self.pos,
            message: message.into(),
        }
    }

    fn varint(&mut self) -> Result<u64, WeightsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| self.error("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<(&'a [u8], usize), WeightsError> {
        let offset = self.base + self.pos;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("field runs past the end of its message"))?;
        let bytes = &self.bytes[self.pos..end];
        self.pos = end;
        Ok((bytes, offset))
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, WeightsError> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| self.error("length does not fit in memory"))?;
                let (bytes, offset) = self.take(len)?;
                Value::Bytes(bytes, offset)
            }
            5 => {
                let (_, offset) = self.take(4)?;
                Value::Fixed32(offset)
            }
            other => return Err(self.error(&format!("unsupported wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn model_with(tensor: &[u8]) -> Vec<u8> {
        let mut graph = Vec::new();
        field(2, b"g", &mut graph);
        field(5, tensor, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        field(7, &graph, &mut model);
        model
    }

    #[test]
    fn reads_packed_and_unpacked_dims_and_raw_data() {
        let mut t = Vec::new();
        varint(1 << 3, &mut t); // dims: 2 (unpacked)
        varint(2, &mut t);
        field(1, &[3], &mut t); // dims: 3 (packed)
        varint(2 << 3, &mut t); // data_type FLOAT
        varint(1, &mut t);
        field(8, b"w", &mut t);
        let raw: Vec<u8> = (0..6u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
        field(9, &raw, &mut t);
        let model = model_with(&t);
        let inits = initializers(&model).unwrap();
        assert_eq!(inits.len(), 1);
        assert_eq!(inits[0].name, "w");
        assert_eq!(inits[0].dims, vec![2, 3]);
        assert_eq!(inits[0].data_type, DATA_TYPE_FLOAT);
        assert_eq!(inits[0].data, TensorData::Raw(&raw));
        assert!(!inits[0].external);
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let mut t = Vec::new();
        field(8, b"name", &mut t);
        let model = model_with(&t);
        for len in 0..model.len() {
            // Every prefix either parses (a shorter, valid message) or errs.
            let _ = initializers(&model[..len]);
        }
        assert!(matches!(
            initializers(&model[..model.len() - 1]),
            Err(WeightsError::Protobuf { .. })
        ));
        assert!(matches!(
            initializers(&[]),
            Err(WeightsError::Protobuf { .. })
        ));
    }
}
