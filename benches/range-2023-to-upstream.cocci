// Coccinelle's version of patch 1's rewrite, for the series benchmark: the
// May 2023 invalidation range into the clamped form. Scoped to the one
// function: unscoped, the first rule also rewrites the (correct) gfn
// computation of __kvm_gmem_prepare_folio().
@@
identifier fn = kvm_gmem_invalidate_begin;
expression S, P, E;
@@
fn(...)
{
<...
- S->base_gfn + E - P
+ S->base_gfn + max(P, E) - P
...>
}

@@
identifier fn = kvm_gmem_invalidate_begin;
expression S, P, E;
@@
fn(...)
{
<...
- S->base_gfn + min(E - P, S->npages)
+ S->base_gfn + min(P + S->npages, E) - P
...>
}
