//! The device and queue, and the buffer plumbing every op shares: storage
//! buffers, uploads, read-backs, and a compiled kernel (pipeline + bind group
//! layout) that dispatches with a fresh uniform and bind group.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use crate::error::{GpuError, Result};

/// An adapter's device and queue. Cheap to clone (wgpu handles are shared).
#[derive(Debug, Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

impl Gpu {
    /// Opens the first adapter: Vulkan natively, the browser's WebGPU on
    /// wasm32. The device gets the adapter's own limits (the defaults cap a
    /// storage binding at 128 MiB; an embedding table may need more).
    pub async fn new() -> Result<Self> {
        let backends = if cfg!(target_arch = "wasm32") {
            wgpu::Backends::BROWSER_WEBGPU
        } else {
            wgpu::Backends::VULKAN
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter {
                message: e.to_string(),
            })?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gpu"),
                required_features: wgpu::Features::empty(),
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice {
                adapter: info.name.clone(),
                message: e.to_string(),
            })?;
        Ok(Gpu {
            device,
            queue,
            info,
        })
    }

    /// [`Gpu::new`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    /// "name (backend, device type)" of the adapter.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let limits = self.device.limits();
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::BufferTooLarge {
                what: what.to_string(),
                bytes,
                limit,
            });
        }
        Ok(())
    }

    /// A zeroed storage buffer of `len` 4-byte values (at least one).
    pub fn storage(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = 4 * len.max(1) as u64;
        self.check_binding(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `data` (4-byte values; an empty slice gets
    /// one zero so that the binding is valid).
    pub fn upload<T: Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        if data.is_empty() {
            return self.storage(label, 1);
        }
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_binding(label, bytes.len() as u64)?;
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            }))
    }

    /// Overwrites the start of `buffer` with `data`.
    pub fn write<T: Pod>(&self, buffer: &wgpu::Buffer, data: &[T]) {
        self.queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(data));
    }

    /// Runs a batch of commands.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit([encoder.finish()]);
    }

    /// A command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Reads `len` f32 values of `buffer` from value `offset` on, after
    /// everything submitted so far.
    pub async fn read_f32(
        &self,
        label: &'static str,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        let bytes = 4 * len as u64;
        let start = 4 * offset as u64;
        if len == 0 {
            return Ok(Vec::new());
        }
        if start + bytes > buffer.size() {
            return Err(GpuError::BufferTooSmall {
                op: "read back",
                buffer: label,
                have: buffer.size() / 4,
                need: (start + bytes) / 4,
            });
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encoder("read back");
        encoder.copy_buffer_to_buffer(buffer, start, &staging, 0, bytes);
        self.submit(encoder);

        let slot = Arc::new(Mutex::new(MapSlot::default()));
        let callback_slot = slot.clone();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                if let Ok(mut s) = callback_slot.lock() {
                    s.result = Some(result.map_err(|e| e.to_string()));
                    if let Some(w) = s.waker.take() {
                        w.wake();
                    }
                }
            });
        // Natively the callback runs while the device is polled; in the
        // browser the device polls itself and this does nothing.
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback {
                buffer: label,
                message: e.to_string(),
            })?;
        MapFuture { slot }
            .await
            .map_err(|message| GpuError::Readback {
                buffer: label,
                message,
            })?;
        let values = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Readback {
                    buffer: label,
                    message: e.to_string(),
                })?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        staging.unmap();
        Ok(values)
    }
}

#[derive(Default)]
struct MapSlot {
    result: Option<std::result::Result<(), String>>,
    waker: Option<Waker>,
}

/// Resolves when `map_async`'s callback has run.
struct MapFuture {
    slot: Arc<Mutex<MapSlot>>,
}

impl Future for MapFuture {
    type Output = std::result::Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut slot) = self.slot.lock() else {
            return Poll::Ready(Err("map callback state poisoned".into()));
        };
        match slot.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Threads per workgroup of every kernel (the `@workgroup_size` of the
/// shaders' x dimension).
pub const WORKGROUP: u32 = 64;

/// Workgroups needed for `n` items at `per_group` per workgroup.
pub fn groups_for(n: usize, per_group: u32) -> u64 {
    (n as u64).div_ceil(u64::from(per_group))
}

/// A compiled compute shader: its pipeline and bind group layout. Binding 0
/// is the op's uniform struct, bindings 1.. its buffers in order.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

impl Kernel {
    /// Compiles `source` (entry point `main`).
    pub fn new(gpu: &Gpu, name: &'static str, source: &'static str) -> Self {
        let module = gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = gpu
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        let layout = pipeline.get_bind_group_layout(0);
        Kernel {
            name,
            pipeline,
            layout,
        }
    }

    /// Checks a grid against the device's per-dimension limit.
    pub fn check_groups(&self, gpu: &Gpu, groups: [u64; 3]) -> Result<[u32; 3]> {
        let limit = gpu.device.limits().max_compute_workgroups_per_dimension;
        let mut out = [0u32; 3];
        for (o, g) in out.iter_mut().zip(groups) {
            *o = u32::try_from(g).ok().filter(|g| *g <= limit).ok_or(
                GpuError::TooManyWorkgroups {
                    op: self.name,
                    groups: g,
                    limit,
                },
            )?;
        }
        Ok(out)
    }

    /// Records one dispatch of `groups` workgroups with `params` as the
    /// uniform and `buffers` bound in order from binding 1.
    pub fn dispatch<P: Pod>(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u64; 3],
    ) -> Result<()> {
        let [x, y, z] = self.check_groups(gpu, groups)?;
        if x == 0 || y == 0 || z == 0 {
            return Ok(());
        }
        let uniform = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(self.name),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &self.layout,
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(self.name),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }
}

/// Fails unless `buffer` holds at least `need` 4-byte values.
pub fn check_len(
    op: &'static str,
    name: &'static str,
    buffer: &wgpu::Buffer,
    need: usize,
) -> Result<()> {
    let have = buffer.size() / 4;
    if have < need as u64 {
        return Err(GpuError::BufferTooSmall {
            op,
            buffer: name,
            have,
            need: need as u64,
        });
    }
    Ok(())
}

/// Fails with a shape error unless `ok`.
pub fn ensure(ok: bool, op: &'static str, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(GpuError::Shape {
            op,
            message: message(),
        })
    }
}
