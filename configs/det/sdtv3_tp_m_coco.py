# TP-Spikformer on SDT-V3-M (10M), 78 % retention; see sdtv3_tp_coco.py.
_base_ = ['./sdtv3_m_coco.py']

model = dict(
    backbone=dict(
        pruning=dict(
            keep_ratios=0.78, scorer=dict(type='IRToPScorer'),
            mode='per_block')))
