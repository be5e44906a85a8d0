// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmf_bind(): kvm_gmem_bind() (or, GMF_BIND_SPLIT, 7.2's
 * kvm_gmem_prepare_memory_region() + kvm_gmem_commit_memory_region()) of a
 * new memslot to file in->fd, whose
 * guest_memfd may already hold bindings.  The fd table maps each harness
 * file to a struct file: a guest_memfd (f_op == &kvm_gmem_fops, a
 * kvm_gmem of this VM or of another) or any other file.
 */
#ifdef GMF_HAVE_OP_BIND
#include "common.h"

static const struct file_operations gmf_other_fops;

/* The xarray as bindings, adjacent pieces of one slot merged. */
static uint32_t gmf_walk_bindings(struct xarray *xa, struct gmf_binding *out)
{
	struct kvm_memory_slot *prev = NULL;
	uint32_t n = 0;
	unsigned int i;

	for (i = 0; i < xa->nr; i++) {
		const struct gmf_xa_range *r = &xa->r[i];
		struct kvm_memory_slot *slot = r->entry;

		if (slot == prev && n &&
		    out[n - 1].pgoff + out[n - 1].npages == r->first) {
			out[n - 1].npages += r->last - r->first + 1;
			continue;
		}
		if (n == GMF_MAX_BINDINGS)
			break;
		out[n].id = (uint16_t)slot->id;
		out[n].base_gfn = slot->base_gfn;
		out[n].npages = r->last - r->first + 1;
		out[n].pgoff = r->first;
		n++;
		prev = slot;
	}
	return n;
}

int gmf_bind(const struct gmf_bind_in *in, struct gmf_bind_out *out)
{
	struct kvm *kvm = &gmf_world.vm.kvm;
	struct kvm_memory_slot *new = &gmf_world.slots[GMF_MAX_BINDINGS];
	struct file *target = NULL;
	struct kvm_gmem *gmem = NULL;
	uint32_t i;
	int ret;

	if (in->nfiles > GMF_MAX_FILES || in->nbound > GMF_MAX_BINDINGS)
		return -1;

	gmf_shim_reset();
	__builtin_memset(&gmf_world.other_vm, 0, sizeof(gmf_world.other_vm));
	for (i = 0; i < in->nfiles; i++) {
		const struct gmf_file *f = &in->files[i];
		struct file *file = &gmf_world.files[i];
		struct inode *inode = &gmf_world.inodes[i].vfs_inode;

		__builtin_memset(file, 0, sizeof(*file));
		__builtin_memset(&gmf_world.inodes[i], 0, sizeof(gmf_world.inodes[i]));
		inode->i_size = (loff_t)f->size;
		inode->i_mapping = &inode->i_data;
		file->f_inode = inode;
		file->f_mapping = inode->i_mapping;
		file->f_count = 1;
		if (f->is_gmem) {
			struct kvm_gmem *g = &gmf_world.gmem[i];

			g->kvm = f->other_vm ? &gmf_world.other_vm.kvm : kvm;
			xa_init(&g->bindings);
			file->f_op = &kvm_gmem_fops;
			file->private_data = g;
		} else {
			file->f_op = &gmf_other_fops;
		}
		gmf_world.fds[i] = f->fd;
		if (f->fd == in->fd) {
			target = file;
			gmem = f->is_gmem ? file->private_data : NULL;
		}
	}
	gmf_world.nfiles = in->nfiles;

	/* Existing bindings live in the target file's guest_memfd. */
	if (in->nbound && !gmem)
		return -1;
	for (i = 0; i < in->nbound; i++) {
		const struct gmf_binding *b = &in->bound[i];
		struct kvm_memory_slot *slot = &gmf_world.slots[i];
		unsigned long last = b->pgoff + b->npages - 1;

		if (!b->npages || last < b->pgoff)
			return -1;
		__builtin_memset(slot, 0, sizeof(*slot));
		slot->id = (short)b->id;
		slot->base_gfn = b->base_gfn;
		slot->npages = b->npages;
		slot->flags = KVM_MEM_GUEST_MEMFD;
		slot->gmem.file = target;
		slot->gmem.pgoff = b->pgoff;
		if (xa_err(xa_store_range(&gmem->bindings, b->pgoff, last, slot,
					  GFP_KERNEL)))
			return -1;
	}
	if (gmem && gmem->bindings.nr != in->nbound)
		return -1;

	__builtin_memset(new, 0, sizeof(*new));
	new->id = (short)in->id;
	new->base_gfn = in->base_gfn;
	new->npages = in->npages;
	new->flags = KVM_MEM_GUEST_MEMFD;

#ifdef GMF_BIND_SPLIT
	/*
	 * __kvm_set_memory_region(): prepare before the slot is installed,
	 * commit from kvm_set_memslot(), then drop prepare's file reference
	 * whatever commit said. A slot whose bind failed is freed, so what
	 * it holds then is nobody's: only a bound slot's fields count.
	 */
	ret = kvm_gmem_prepare_memory_region(kvm, new, in->fd, in->offset);
	if (!ret) {
		struct file *held = new->gmem.file;

		ret = kvm_gmem_commit_memory_region(kvm, new);
		if (held)
			fput(held);
		if (ret) {
			new->gmem.file = NULL;
			new->gmem.pgoff = 0;
		}
	}
#else
	ret = kvm_gmem_bind(kvm, new, in->fd, in->offset);
#endif

	__builtin_memset(out, 0, sizeof(*out));
	out->ret = ret;
	out->pgoff = new->gmem.pgoff;
	out->file_set = target ? new->gmem.file == target : new->gmem.file != NULL;
	if (gmem)
		out->nbound = gmf_walk_bindings(&gmem->bindings, out->bound);
	return 0;
}
#endif /* GMF_HAVE_OP_BIND */
