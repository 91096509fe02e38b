# sdtv3_gen1.py on Prophesee 1Mpx (1280 x 720): the representation is
# downsampled by 2 to 360 x 640 as in RVT, three scored classes (pedestrian,
# two-wheeler, car; the other four ids are dropped on loading), and the
# metric evaluates at the downsampled size with halved size filters.
_base_ = './sdtv3_gen1.py'

camera = '1mpx'
data_root = 'data/1mpx/'
classes = ('pedestrian', 'two-wheeler', 'car')
downsample = 2
representation = dict(_base_.representation, downsample=downsample)

model = dict(bbox_head=dict(num_classes=len(classes)))
# the base pipelines with this representation (train step 3, test step 2)
train_pipeline = [
    *_base_.train_pipeline[:2], representation, *_base_.train_pipeline[3:]
]
test_pipeline = [
    _base_.test_pipeline[0], representation, *_base_.test_pipeline[2:]
]
dataset_type = 'OneMpxDataset'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, pipeline=test_pipeline))
val_evaluator = dict(camera=camera, downsample_factor=downsample)
test_evaluator = val_evaluator
